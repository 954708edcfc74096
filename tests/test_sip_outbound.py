"""Satisfaction callbacks over SIP: SIPp callees answer and press 1, 2, 3 or nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from harness.sipfix import Ivr, in_threads, need_peers, running_ivr, sip_settings
from harness.sipkit import RtpStream, dtmf_pcap, start_sipp
from ivr.config import Settings, SipTrunkConfig
from ivr.spoken import digits_spoken
from ivr.store import Campaign, SurveyAttempt, Ticket, TicketStatus
from ivr.transports.sip.dialer import SipDialer


@pytest.fixture
def ivr(base_settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    need_peers("sipp")
    # About the survey's signalling and keys, not what callees hear: prompts cut short.
    with running_ivr(sip_settings(base_settings, tmp_path, short_prompts=True), asr=False) as ivr:
        yield ivr


def completed_ticket(ivr: Ivr, n: int) -> tuple[int, dict[str, object]]:
    """A completed ticket with a survey attempt; the variables a campaign would pass."""
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    with ivr.app.db.session() as s:
        campaign = Campaign(name="test", created_at=now, updated_at=now)
        ticket = Ticket(
            number=f"12345-20261120-{n:05d}",
            status=TicketStatus.COMPLETED,
            line_number="12315",
            caller_number="13800138000",
            category="投诉",
            category_source="menu",
            department="市场监督管理局",
            department_source="keywords",
            contact_due=date(2026, 11, 24),
            due_date=date(2026, 12, 11),
            created_at=now,
            updated_at=now,
            completed_at=now,
        )
        s.add_all([campaign, ticket])
        s.flush()
        attempt = SurveyAttempt(
            campaign_id=campaign.id,
            ticket_id=ticket.id,
            attempt_no=1,
            phone="13800138000",
            status="dialing",
        )
        s.add(attempt)
        s.flush()
        line = ivr.app.settings.line("12315")
        assert line is not None
        return ticket.id, {
            "attempt_id": attempt.id,
            "line_number": "12315",
            "line_name": line.name,
            "ticket_no_spoken": digits_spoken(ticket.number),
        }


def outcome(ivr: Ivr, ticket_id: int) -> tuple[str, str | None, str | None, str | None]:
    with ivr.app.db.session() as s:
        t = s.get(Ticket, ticket_id)
        a = s.query(SurveyAttempt).filter_by(ticket_id=ticket_id).one()
        assert t is not None
        return t.status, t.survey_outcome, a.score, a.resolved


@pytest.mark.parametrize(
    ("digit", "score", "status", "solved", "resolved"),
    [
        ("1", "satisfied", "surveyed", "1", "resolved"),
        ("2", "basically_satisfied", "surveyed", "2", "unresolved"),
        ("3", "unsatisfied", "review", "2", "unresolved"),
    ],
)
def test_callee_answers_both_questions_by_keypress(
    ivr: Ivr, tmp_path: Path, digit: str, score: str, status: str, solved: str, resolved: str
) -> None:
    ticket_id, variables = completed_ticket(ivr, int(digit))
    pcap = tmp_path / f"press{digit}{solved}.pcap"
    stream = RtpStream()
    stream.silence(2500)  # the score is pressed during the introduction,
    stream.dtmf(digit)
    stream.silence(3000)  # the second answer a while later
    stream.dtmf(solved)
    stream.write(pcap)
    with start_sipp(
        "uas_answer_dtmf", variables={"ring_ms": 500}, media={"media.pcap": pcap}, timeout=90
    ) as callee:
        result = SipDialer(ivr.phone).dial(
            f"sip:13800138000@{callee.uri_hostport}", variables=variables
        )
        sipp = callee.wait(timeout=60)
    assert result.outcome == "answered" and result.score == score
    assert sipp.ok, sipp.describe()
    assert sipp.received("BYE")  # the IVR thanked and hung up
    assert outcome(ivr, ticket_id) == (status, score, score, resolved)
    with ivr.app.db.session() as s:
        t = s.get(Ticket, ticket_id)
        assert t is not None and t.survey_resolved == resolved
    ivr.wait_idle()
    assert ivr.phone.ports.in_use == 0


def test_callee_who_answers_only_the_first_question_is_scored(ivr: Ivr, tmp_path: Path) -> None:
    ticket_id, variables = completed_ticket(ivr, 5)
    pcap = tmp_path / "press1.pcap"
    dtmf_pcap("1", pcap, lead_silence_ms=2500)
    with start_sipp(
        "uas_answer_dtmf", variables={"ring_ms": 500}, media={"media.pcap": pcap}, timeout=90
    ) as callee:
        result = SipDialer(ivr.phone).dial(
            f"sip:13800138000@{callee.uri_hostport}", variables=variables
        )
        sipp = callee.wait(timeout=60)
    assert result.outcome == "answered" and result.score == "satisfied"
    assert sipp.ok, sipp.describe()
    assert outcome(ivr, ticket_id) == ("surveyed", "satisfied", "satisfied", None)


def test_callee_who_presses_nothing_counts_as_no_response(ivr: Ivr, tmp_path: Path) -> None:
    ticket_id, variables = completed_ticket(ivr, 9)
    with start_sipp("uas_answer_silent", variables={"ring_ms": 300}, timeout=120) as callee:
        result = SipDialer(ivr.phone).dial(
            f"sip:13800138000@{callee.uri_hostport}", variables=variables
        )
        sipp = callee.wait(timeout=90)
    assert result.outcome == "answered" and result.score == "no_response"
    assert sipp.ok, sipp.describe()
    # The ticket stays completed (no valid answer); the attempt records no response.
    assert outcome(ivr, ticket_id) == ("completed", None, "no_response", None)


def test_busy_and_unanswered_callees(ivr: Ivr) -> None:
    with (
        start_sipp("uas_busy", timeout=30) as busy,
        start_sipp("uas_noanswer", timeout=60) as silent_phone,
    ):
        dialer = SipDialer(ivr.phone)
        busy_result, unanswered = in_threads(
            [
                lambda: dialer.dial(f"sip:13900000001@{busy.uri_hostport}"),
                lambda: dialer.dial(f"sip:13900000002@{silent_phone.uri_hostport}", ring_timeout=3),
            ]
        )
        assert busy.wait(timeout=30).ok and silent_phone.wait(timeout=30).ok
    assert (busy_result.outcome, busy_result.sip_status) == ("busy", 486)
    assert (unanswered.outcome, unanswered.sip_status) == ("no-answer", 487)
    assert any("cancel sent" in w for _, w in unanswered.timeline)
    assert ivr.phone.ports.in_use == 0


def test_survey_calls_go_to_the_configured_trunk_port(
    base_settings: Settings, tmp_path: Path
) -> None:
    """sip.outbound_trunk names host and port: a number (not a URI) is dialed through it."""
    need_peers("sipp")
    pcap = tmp_path / "press1.pcap"
    dtmf_pcap("1", pcap, lead_silence_ms=2500)
    with start_sipp(
        "uas_answer_dtmf", variables={"ring_ms": 300}, media={"media.pcap": pcap}, timeout=90
    ) as trunk:
        host, port = trunk.address
        assert port != 5060
        trunk_cfg = SipTrunkConfig(host=host, port=port)
        settings = sip_settings(
            base_settings, tmp_path, outbound_trunk=trunk_cfg, short_prompts=True
        )
        with running_ivr(settings, asr=False) as ivr:
            ticket_id, variables = completed_ticket(ivr, 11)
            result = SipDialer(ivr.phone).dial("13800138000", variables=variables)
            sipp = trunk.wait(timeout=60)
            assert outcome(ivr, ticket_id) == ("surveyed", "satisfied", "satisfied", None)
    assert result.outcome == "answered" and result.score == "satisfied"
    assert sipp.ok, sipp.describe()
    (invite,) = sipp.received("INVITE")
    assert invite.request_uri == f"sip:13800138000@{host}:{port}"


def test_survey_calls_over_tcp_to_the_configured_trunk(
    base_settings: Settings, tmp_path: Path
) -> None:
    """transport: tcp: the INVITE, the ACK and the BYE all go over one TCP connection."""
    need_peers("sipp")
    pcap = tmp_path / "press3.pcap"
    dtmf_pcap("3", pcap, lead_silence_ms=2500)
    with start_sipp(
        "uas_answer_dtmf",
        variables={"ring_ms": 300},
        media={"media.pcap": pcap},
        extra_args=["-t", "t1"],
        timeout=90,
    ) as trunk:
        host, port = trunk.address
        trunk_cfg = SipTrunkConfig(host=host, port=port, transport="tcp")
        settings = sip_settings(
            base_settings, tmp_path, outbound_trunk=trunk_cfg, short_prompts=True
        )
        with running_ivr(settings, asr=False) as ivr:
            ticket_id, variables = completed_ticket(ivr, 12)
            result = SipDialer(ivr.phone).dial("13800138000", variables=variables)
            sipp = trunk.wait(timeout=60)
            assert outcome(ivr, ticket_id) == ("review", "unsatisfied", "unsatisfied", None)
    assert result.outcome == "answered" and result.score == "unsatisfied"
    assert sipp.ok, sipp.describe()
    (invite,) = sipp.received("INVITE")
    assert invite.request_uri == f"sip:13800138000@{host}:{port};transport=tcp"
    assert sipp.received("ACK") and sipp.received("BYE")
    assert {t.transport.lower() for t in sipp.messages} == {"tcp"}
