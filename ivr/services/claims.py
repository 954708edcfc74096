"""认领: one console user works a draft at a time.

A claim names the user and when it was taken; it lapses console.claim_minutes
later (an operator who walks away does not hold the draft for ever). While a
claim is live, other users' review actions on the ticket are refused
(`check_claim`, called by every ticket change); the holder releases it, and a
supervisor may release anyone's. Accepting, rejecting or marking the draft a
duplicate ends the claim. Claims, releases and take-overs of lapsed claims are
audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.accounts import has_role
from ivr.queries.tickets import ticket_id
from ivr.services.unit import (
    Actor,
    Conflict,
    IllegalTransition,
    NotFound,
    audit,
    locked,
    unit_of_work,
)
from ivr.store.models import Role, Ticket, TicketStatus, User

if TYPE_CHECKING:
    from ivr.app import Hotline


@dataclass(frozen=True)
class Claim:
    """A live claim: who holds the ticket and until when."""

    holder: str
    until: datetime


def live_claim(app: Hotline, ticket: Ticket, now: datetime) -> Claim | None:
    """The ticket's claim, unless there is none or it has lapsed."""
    if ticket.claimed_by is None or ticket.claimed_at is None:
        return None
    until = ticket.claimed_at + timedelta(minutes=app.settings.console.claim_minutes)
    return Claim(ticket.claimed_by, until) if now < until else None


def check_claim(app: Hotline, actor: Actor, ticket: Ticket, now: datetime) -> None:
    """Refuse a change of a ticket someone else has claimed (Conflict)."""
    claim = live_claim(app, ticket, now)
    if claim is not None and (actor.kind != "user" or claim.holder != actor.name):
        raise Conflict(
            f"ticket {ticket.number} is claimed by {claim.holder}",
            zh=f"工单 {ticket.number} 已由 {claim.holder} 认领，正在处理",
            holder=claim.holder,
        )


def end_claim(ticket: Ticket) -> None:
    """The draft is no longer one to work (accepted, rejected, a duplicate)."""
    ticket.claimed_by = ticket.claimed_at = None


def _lock(session: Session, ref: str | int) -> Ticket:
    found = ticket_id(session, ref)
    ticket = locked(session, Ticket, found) if found is not None else None
    if ticket is None:
        raise NotFound(f"no ticket {ref}", zh=f"找不到工单 {ref}")
    return ticket


def claim(app: Hotline, actor: Actor, ref: str | int) -> Claim:
    """Take the draft for `actor` (a console user); renewing one's own claim restarts it."""
    now = app.clock.now()
    with unit_of_work(app) as session:
        ticket = _lock(session, ref)
        if ticket.status != TicketStatus.DRAFT:
            raise IllegalTransition(
                f"ticket {ticket.number} is {ticket.status}; only drafts are claimed",
                zh=f"工单 {ticket.number} 已不是草稿，无需认领",
            )
        held = live_claim(app, ticket, now)
        if held is not None and held.holder != actor.name:
            raise Conflict(
                f"ticket {ticket.number} is claimed by {held.holder}",
                zh=f"工单 {ticket.number} 已由 {held.holder} 认领",
                holder=held.holder,
            )
        detail = {"claimed_by": {"old": ticket.claimed_by, "new": actor.name}}
        ticket.claimed_by, ticket.claimed_at = actor.name, now
        ticket.updated_at = now  # the live queues show who has it
        audit(session, actor, "ticket.claim", ticket, detail, now)
        until = now + timedelta(minutes=app.settings.console.claim_minutes)
        return Claim(actor.name, until)


def release(app: Hotline, actor: Actor, ref: str | int) -> None:
    """Give up a claim: the holder's own, or anyone's for a supervisor (or admin)."""
    now = app.clock.now()
    with unit_of_work(app) as session:
        ticket = _lock(session, ref)
        holder = ticket.claimed_by
        if holder is None:
            raise IllegalTransition(
                f"ticket {ticket.number} is not claimed", zh=f"工单 {ticket.number} 没有人认领"
            )
        if holder != actor.name and not _supervises(session, actor):
            raise Conflict(
                f"ticket {ticket.number} is claimed by {holder}; only a supervisor releases it",
                zh=f"工单 {ticket.number} 由 {holder} 认领，只有班长可以释放",
                holder=holder,
            )
        end_claim(ticket)
        ticket.updated_at = now
        detail = {"claimed_by": {"old": holder, "new": None}}
        audit(session, actor, "ticket.release", ticket, detail, now)


def _supervises(session: Session, actor: Actor) -> bool:
    if actor.kind != "user":
        return actor.kind == "cli"  # whoever runs `ivr` on the server
    role = session.scalar(select(User.role).where(User.username == actor.name))
    return role is not None and has_role(role, Role.SUPERVISOR)
