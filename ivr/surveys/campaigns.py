"""Campaigns: which completed tickets to survey, and their first attempts."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, insert, select
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
    q = select(Ticket.id, Ticket.caller_number, Ticket.completed_at).where(
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


def create_campaign(app: Hotline, name: str, filters: Filters | None = None) -> tuple[int, int]:
    """A campaign over the completed, not yet surveyed tickets; (campaign id, attempts)."""
    filters = filters or Filters()
    policy = policy_for(app)
    now = app.clock.now()
    with app.db.session() as s:
        campaign = Campaign(
            name=name, status="created", filters=filters.as_dict(), created_at=now, updated_at=now
        )
        s.add(campaign)
        s.flush()
        first_call = lru_cache(maxsize=4096)(policy.next_allowed)
        rows = [
            _first_attempt(campaign.id, tid, phone, first_call(max(now, completed or now)))
            for tid, phone, completed in s.execute(_eligible(app, filters))
        ]
        if rows:
            s.execute(insert(SurveyAttempt), rows)
        log.info("campaign %d %r: %d tickets", campaign.id, name, len(rows))
        return campaign.id, len(rows)


def _first_attempt(
    campaign_id: int, ticket_id: int, phone: str, not_before: datetime
) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "ticket_id": ticket_id,
        "attempt_no": 1,
        "phone": phone,
        "status": "planned",
        "not_before": not_before,
    }


def import_csv(app: Hotline, name: str, path: Path) -> tuple[int, int, list[str]]:
    """A campaign from a CSV of ticket number + phone; (id, attempts, problems by line)."""
    policy = policy_for(app)
    now = app.clock.now()
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path}: cannot read: {exc}") from exc
    reader = csv.reader(text.splitlines())
    with app.db.session() as s:
        campaign = Campaign(
            name=name, status="created", filters={"csv": path.name}, created_at=now, updated_at=now
        )
        s.add(campaign)
        s.flush()
        rows = []
        seen: set[int] = set()
        for lineno, record in enumerate(reader, start=1):
            if not record or (lineno == 1 and not any(ch.isdigit() for ch in record[0])):
                continue  # blank line or a header row
            if len(record) < 2:
                problems.append(f"line {lineno}: expected ticket number,phone")
                continue
            number, raw_phone = record[0].strip(), record[1].strip()
            ticket = s.scalars(select(Ticket).where(Ticket.number == number)).first()
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
            rows.append(_first_attempt(campaign.id, ticket.id, phone, policy.next_allowed(now)))
        if rows:
            s.execute(insert(SurveyAttempt), rows)
        return campaign.id, len(rows), problems


def set_status(app: Hotline, campaign_id: int, status: str) -> None:
    allowed = {"running": {"created", "paused", "running"}, "paused": {"running", "created"}}
    with app.db.session() as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            raise CampaignError(f"no campaign {campaign_id}")
        if c.status not in allowed[status]:
            raise CampaignError(f"campaign {campaign_id} is {c.status}; it cannot be {status}")
        c.status, c.updated_at = status, app.clock.now()


def progress(session: Session, campaign_id: int) -> dict[str, int]:
    """Counts of attempts by status, and of finished attempts by outcome."""
    out: Counter[str] = Counter()
    for status, outcome in session.execute(
        select(SurveyAttempt.status, SurveyAttempt.outcome).where(
            SurveyAttempt.campaign_id == campaign_id
        )
    ):
        out[status] += 1
        if outcome:
            out[f"outcome:{outcome}"] += 1
    return dict(out)


def add_do_not_call(app: Hotline, number: str, reason: str) -> str:
    n = normalize_number(number)
    with app.db.session() as s:
        if s.get(DoNotCall, n) is None:
            s.add(DoNotCall(number=n, reason=reason, added_at=app.clock.now()))
    return n


def is_do_not_call(app: Hotline, session: Session, number: str) -> bool:
    cfg = {normalize_number(n) for n in app.settings.surveys.do_not_call}
    return number in cfg or session.get(DoNotCall, number) is not None
