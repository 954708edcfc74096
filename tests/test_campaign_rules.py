"""The rules of campaign and do-not-call changes, whichever door asks (see
`ivr.services.campaigns`): refused changes leave the campaign and the audit log alone."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from ivr.app import Hotline
from ivr.services import Actor, IllegalTransition, Invalid, NotFound
from ivr.services.campaigns import create_campaign, pause_campaign, resume_campaign
from ivr.services.dnc import add_do_not_call
from ivr.store import AuditEntry, Campaign, SurveyAttempt, Ticket
from ivr.tickets import complete

from .consolekit import draft

LEAD = Actor.user("lead")


def completed(hotline: Hotline, n: int) -> None:
    for _ in range(n):
        tid = draft(hotline)
        with hotline.db.session() as s:
            complete(s.get_one(Ticket, tid), "已处理", hotline.clock.now())


def audited(hotline: Hotline) -> list[str]:
    with hotline.db.read() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_a_finished_campaign_changes_no_more(hotline: Hotline) -> None:
    cid, _ = create_campaign(hotline, LEAD, "11月回访")
    with hotline.db.session() as s:
        s.get_one(Campaign, cid).status = "done"  # as the dispatcher leaves it
    for change in (pause_campaign, resume_campaign):
        with pytest.raises(IllegalTransition, match="is done"):
            change(hotline, LEAD, cid)
    with pytest.raises(NotFound, match="no campaign 999"):
        pause_campaign(hotline, LEAD, 999)
    assert audited(hotline) == ["campaign.create"]


def test_a_created_campaign_may_be_paused_before_it_starts(hotline: Hotline) -> None:
    cid, _ = create_campaign(hotline, LEAD, "11月回访")
    pause_campaign(hotline, LEAD, cid)
    with pytest.raises(IllegalTransition, match="is paused; it cannot pause"):
        pause_campaign(hotline, LEAD, cid)
    resume_campaign(hotline, LEAD, cid)
    with hotline.db.read() as s:
        assert s.get_one(Campaign, cid).status == "running"
    assert audited(hotline) == ["campaign.create", "campaign.pause", "campaign.resume"]


def test_a_campaign_needs_a_name(hotline: Hotline) -> None:
    with pytest.raises(Invalid, match="needs a name"):
        create_campaign(hotline, LEAD, "   ")
    with pytest.raises(Invalid, match="too long"):
        create_campaign(hotline, LEAD, "回" * 129)
    with hotline.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0
    assert audited(hotline) == []


def test_campaigns_planned_at_once_never_share_a_ticket(hotline: Hotline) -> None:
    """Two supervisors create a campaign at the same moment: each ticket is planned once."""
    completed(hotline, 6)
    start = threading.Barrier(2)
    results: list[int] = []

    def plan(name: str) -> None:
        start.wait()
        results.append(create_campaign(hotline, LEAD, name).planned)

    threads = [threading.Thread(target=plan, args=(n,)) for n in ("甲", "乙")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 6]
    with hotline.db.read() as s:
        per_ticket = s.execute(
            select(SurveyAttempt.ticket_id, func.count()).group_by(SurveyAttempt.ticket_id)
        ).all()
    assert len(per_ticket) == 6 and {n for _, n in per_ticket} == {1}


def test_do_not_call_refuses_what_is_not_a_number(hotline: Hotline) -> None:
    with pytest.raises(Invalid, match="not a phone number"):
        add_do_not_call(hotline, LEAD, "call me maybe", "")
    assert add_do_not_call(hotline, LEAD, "+86 139 0000 0003", "opted out").added
    assert not add_do_not_call(hotline, LEAD, "13900000003", "again").added
    assert audited(hotline) == ["dnc.add"]
