"""Campaigns end to end over SIP: SIPp callees press 1, 2, 3 or nothing, are busy or never
answer; and a campaign run killed with -9 resumes without calling anyone twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from harness.sipfix import need_peers, running_ivr, sip_settings
from harness.sipkit import dtmf_pcap, start_sipp
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.reports.surveys import report, total
from ivr.services import Actor
from ivr.services.campaigns import create_campaign
from ivr.store import SurveyAttempt, Ticket
from ivr.surveys.run import run_campaign

from .campaign_child import RoutedSipDialer
from .surveykit import completed_tickets

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def survey_settings(base: Settings, tmp: Path, **surveys: object) -> Settings:
    s = sip_settings(base, tmp, short_prompts=True)  # about the campaign, not the prompts
    cfg = s.surveys.model_copy(update={"calls_per_second": 2.0, "ring_timeout_s": 5, **surveys})
    return s.model_copy(update={"surveys": cfg})


def callee(tmp: Path, kind: str, n: int):  # type: ignore[no-untyped-def]
    if kind in "123":
        pcap = tmp / f"press{kind}-{n}.pcap"
        dtmf_pcap(kind, pcap, lead_silence_ms=2500)
        return start_sipp(
            "uas_answer_dtmf", variables={"ring_ms": 300}, media={"media.pcap": pcap}, timeout=120
        )
    scenario = {"silent": "uas_answer_silent", "busy": "uas_busy", "noanswer": "uas_noanswer"}
    return start_sipp(scenario[kind], timeout=120)


def test_campaign_over_sip_scores_tickets_and_reports(
    base_settings: Settings, tmp_path: Path
) -> None:
    need_peers("sipp")
    kinds = {
        "13900000001": "1",
        "13900000002": "2",
        "13900000003": "3",
        "13900000004": "silent",
        "13900000005": "busy",
        "13900000006": "noanswer",
    }
    clock = FixedClock(MONDAY_10)
    settings = survey_settings(base_settings, tmp_path)
    callees = {phone: callee(tmp_path, kind, i) for i, (phone, kind) in enumerate(kinds.items())}
    try:
        with running_ivr(settings, asr=False, clock=clock) as ivr:
            ids = dict(
                zip(
                    kinds,
                    completed_tickets(ivr.app, list(kinds), MONDAY_10.replace(hour=9)),
                    strict=True,
                )
            )
            cid, planned = create_campaign(ivr.app, Actor.system("test"), "sip e2e")
            assert planned == 6
            routes = {p: c.uri_hostport for p, c in callees.items()}
            summary = run_campaign(ivr.app, RoutedSipDialer(ivr.phone, routes), cid)
            ivr.wait_idle()
            with ivr.app.db.session() as s:
                tickets = {p: s.get(Ticket, i) for p, i in ids.items()}
                states = {p: (t.status, t.survey_outcome) for p, t in tickets.items() if t}
                attempts = {
                    a.phone: a
                    for a in s.scalars(select(SurveyAttempt).where(SurveyAttempt.attempt_no == 1))
                }
                retries = s.scalars(
                    select(SurveyAttempt.phone).where(SurveyAttempt.attempt_no == 2)
                ).all()
            rows = report(ivr.app, "department", cid)
    finally:
        for c in callees.values():
            c.stop()
    assert summary.state == "waiting"  # retries for busy and unanswered are planned
    assert summary.outcomes == {"answered": 3, "no_response": 1, "busy": 1, "no-answer": 1}
    assert states == {
        "13900000001": ("surveyed", "satisfied"),
        "13900000002": ("surveyed", "basically_satisfied"),
        "13900000003": ("review", "unsatisfied"),
        "13900000004": ("completed", None),
        "13900000005": ("completed", None),
        "13900000006": ("completed", None),
    }
    assert attempts["13900000004"].outcome == "no_response"
    assert sorted(retries) == ["13900000005", "13900000006"]
    t = total(rows)
    assert (t.tickets, t.satisfied, t.basically_satisfied, t.unsatisfied, t.no_response) == (
        6,
        1,
        1,
        1,
        1,
    )
    assert t.satisfaction_rate == 2 / 3 and t.response_rate == 0.5


def test_campaign_run_killed_with_sigkill_resumes_without_double_calls(
    base_settings: Settings, tmp_path: Path
) -> None:
    need_peers("sipp")
    phones = [f"1390000010{i}" for i in range(6)]
    settings = survey_settings(base_settings, tmp_path, max_concurrent=2, calls_per_second=1.0)
    callees = {p: callee(tmp_path, "12312"[i % 5], i) for i, p in enumerate(phones)}
    routes = {p: c.uri_hostport for p, c in callees.items()}
    try:
        with running_ivr(settings, asr=False, clock=FixedClock(MONDAY_10)) as ivr:
            completed_tickets(ivr.app, phones, MONDAY_10.replace(hour=9))
            cid, _ = create_campaign(ivr.app, Actor.system("test"), "crash")
            # The first run gets its own RTP ports so the restarted one cannot collide.
            child_settings = sip_settings(base_settings, tmp_path, short_prompts=True).model_copy(
                update={"surveys": settings.surveys, "database_url": settings.database_url}
            )
            cfg = tmp_path / "child-settings.json"
            cfg.write_text(child_settings.model_dump_json())
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.campaign_child",
                    str(cfg),
                    str(cid),
                    json.dumps(routes),
                    MONDAY_10.isoformat(),
                ],
                cwd=Path(__file__).resolve().parents[1],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            # Kill it while calls are in progress: after some attempts are claimed.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with ivr.app.db.session() as s:
                    claimed = s.scalars(
                        select(SurveyAttempt).where(SurveyAttempt.claimed_at.is_not(None))
                    ).all()
                    done = [a for a in claimed if a.status == "done"]
                if len(claimed) >= 3 and done:
                    break
                time.sleep(0.2)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
            with ivr.app.db.session() as s:
                before = {a.id: (a.status, a.score) for a in s.scalars(select(SurveyAttempt))}
            summary = run_campaign(ivr.app, RoutedSipDialer(ivr.phone, routes), cid)
            ivr.wait_idle()
            with ivr.app.db.session() as s:
                after = list(s.scalars(select(SurveyAttempt).order_by(SurveyAttempt.id)))
    finally:
        results = {p: c.stop() or c.result() for p, c in callees.items()}
    assert summary.recovered >= 1
    # Calls, not datagrams: a loaded machine may retransmit an INVITE (same Call-ID).
    invites = {p: len({m.call_id for m in r.received("INVITE")}) for p, r in results.items()}
    dialed = {}
    for a in after:
        if a.claimed_at is not None:
            dialed[a.phone] = dialed.get(a.phone, 0) + 1
    # Every number was called exactly as often as it had attempts claimed: once.
    assert invites == dialed == dict.fromkeys(phones, 1)
    # Scores recorded before the kill are still there.
    for a in after:
        _, score = before.get(a.id, (None, None))
        if score is not None:
            assert a.score == score
    assert all(a.status in ("done", "planned") for a in after)
