"""Campaigns: which completed tickets to survey, and their first attempts.

The planning here runs inside the unit of work of `ivr.services.campaigns`,
which creates the campaign row, checks the rules and writes the audit row.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, insert, select
from sqlalchemy.orm import Session

from ivr.phones import PhoneNumberError, normalize_number
from ivr.store.models import Campaign, DoNotCall, SurveyAttempt, Ticket, TicketStatus
from ivr.surveys.policy import CallPolicy

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

OPEN = ("planned", "claimed", "dialing")


class CampaignError(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    completed_from: date | None = None
    completed_to: date | None = None
    line: str | None = None
    department: str | None = None
    category: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in self.__dict__.items()
            if v is not None
        }


def policy_for(app: Hotline) -> CallPolicy:
    return CallPolicy(app.settings.surveys, app.calendar, app.settings.tz)


def _eligible(app: Hotline, f: Filters) -> Any:
    tz = app.settings.tz
    q = select(Ticket.id, Ticket.caller_number, Ticket.completed_at, Ticket.survey_round).where(
        Ticket.status == TicketStatus.COMPLETED,
        Ticket.survey_outcome.is_(None),
        Ticket.caller_number.is_not(None),
        ~exists().where(SurveyAttempt.ticket_id == Ticket.id, SurveyAttempt.status.in_(OPEN)),
    )
    if f.completed_from:
        q = q.where(Ticket.completed_at >= datetime.combine(f.completed_from, time(), tz))
    if f.completed_to:
        end = datetime.combine(f.completed_to + timedelta(days=1), time(), tz)
        q = q.where(Ticket.completed_at < end)
    if f.line:
        q = q.where(Ticket.line_number == f.line)
    if f.department:
        q = q.where(Ticket.department == f.department)
    if f.category:
        q = q.where(Ticket.category == f.category)
    return q.order_by(Ticket.completed_at, Ticket.id)


def plan_completed(
    app: Hotline, session: Session, campaign: Campaign, filters: Filters, now: datetime
) -> int:
    """First attempts for the completed, not yet surveyed tickets matching `filters` (a
    re-handled ticket completed again is not yet surveyed in its new round)."""
    first_call = lru_cache(maxsize=4096)(policy_for(app).next_allowed)
    rows = [
        _first_attempt(campaign.id, tid, phone, first_call(max(now, completed or now)), rnd)
        for tid, phone, completed, rnd in session.execute(_eligible(app, filters))
    ]
    if rows:
        session.execute(insert(SurveyAttempt), rows)
    log.info("campaign %d %r: %d tickets", campaign.id, campaign.name, len(rows))
    return len(rows)


def _first_attempt(
    campaign_id: int, ticket_id: int, phone: str, not_before: datetime, round_: int
) -> dict[str, Any]:
    return {
        "round": round_,
        "campaign_id": campaign_id,
        "ticket_id": ticket_id,
        "attempt_no": 1,
        "phone": phone,
        "status": "planned",
        "not_before": not_before,
    }


def plan_listed(
    app: Hotline, session: Session, campaign: Campaign, csv_text: str, now: datetime
) -> tuple[int, list[str]]:
    """First attempts for a CSV of ticket number + phone; (attempts, problems by line)."""
    first_call = policy_for(app).next_allowed(now)
    problems: list[str] = []
    rows = []
    seen: set[int] = set()
    for lineno, record in enumerate(csv.reader(csv_text.splitlines()), start=1):
        if not record or (lineno == 1 and not any(ch.isdigit() for ch in record[0])):
            continue  # blank line or a header row
        if len(record) < 2:
            problems.append(f"line {lineno}: expected ticket number,phone")
            continue
        number, raw_phone = record[0].strip(), record[1].strip()
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).first()
        if ticket is None:
            problems.append(f"line {lineno}: no ticket {number}")
            continue
        try:
            phone = normalize_number(raw_phone)
        except PhoneNumberError:
            problems.append(f"line {lineno}: {number}: not a phone number")
            continue
        if ticket.id in seen:
            problems.append(f"line {lineno}: {number} listed twice")
            continue
        seen.add(ticket.id)
        rows.append(_first_attempt(campaign.id, ticket.id, phone, first_call, ticket.survey_round))
    if rows:
        session.execute(insert(SurveyAttempt), rows)
    return len(rows), problems


def progress_of(session: Session, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign: counts of attempts by status, and of finished attempts by outcome."""
    out: dict[int, Counter[str]] = {cid: Counter() for cid in campaign_ids}
    for cid, status, outcome, n in session.execute(
        select(
            SurveyAttempt.campaign_id,
            SurveyAttempt.status,
            SurveyAttempt.outcome,
            func.count(),
        )
        .where(SurveyAttempt.campaign_id.in_(campaign_ids))
        .group_by(SurveyAttempt.campaign_id, SurveyAttempt.status, SurveyAttempt.outcome)
    ):
        out[cid][status] += n
        if outcome:
            out[cid][f"outcome:{outcome}"] += n
    return {cid: dict(counts) for cid, counts in out.items()}


def progress(session: Session, campaign_id: int) -> dict[str, int]:
    """Counts of attempts by status, and of finished attempts by outcome."""
    return progress_of(session, [campaign_id])[campaign_id]


def is_do_not_call(app: Hotline, session: Session, number: str) -> bool:
    cfg = {normalize_number(n) for n in app.settings.surveys.do_not_call}
    return number in cfg or session.get(DoNotCall, number) is not None
