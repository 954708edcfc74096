"""Ticket review and lifecycle: accept (受理), update, mark duplicate (重复件), reject
(不予受理), complete (办结), reopen (重办), and what a survey answer does to its ticket.

Each public function is one unit of work: it locks the ticket row (PostgreSQL:
SELECT ... FOR UPDATE; SQLite: the unit's BEGIN IMMEDIATE), checks the caller's
version if one is given (`Stale` if it is outdated), applies the rule from
`ticket_rules` and writes one audit row naming the actor and the changed fields
(old -> new). Nothing is written when the change is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ivr.queries.tickets import ticket_id
from ivr.services import supervision
from ivr.services import ticket_rules as rules
from ivr.services.claims import check_claim, end_claim
from ivr.services.ticket_rules import Changes
from ivr.services.unit import Actor, NotFound, Stale, audit, locked, unit_of_work
from ivr.store.changes import stamp
from ivr.store.models import KbArticle, Ticket, TicketStatus
from ivr.tickets import to_dict, version

if TYPE_CHECKING:
    from ivr.app import Hotline

# A caller's copies of the ticket (ETags, a form's version); None: do not check.
Expected = str | Collection[str] | None
Rule = Callable[[Session, Ticket, datetime], Changes]


@dataclass(frozen=True)
class Changed:
    """A ticket after a change: what changed, and the ticket as it now is (unmasked)."""

    id: int
    number: str
    changes: Changes
    shown: dict[str, Any]
    version: str


def lock_ticket(session: Session, ref: str | int) -> Ticket:
    found = ticket_id(session, ref)
    ticket = locked(session, Ticket, found) if found is not None else None
    if ticket is None:
        raise NotFound(f"no ticket {ref}")
    return ticket


def _check_version(ticket: Ticket, expected: Expected) -> None:
    if expected is None:
        return
    copies = {expected} if isinstance(expected, str) else set(expected)
    if version(ticket) not in copies:
        raise Stale(
            f"ticket {ticket.number} was changed by someone else since you read it: "
            "read it again and decide again",
            zh=f"工单 {ticket.number} 在您打开后已被他人修改，请查看最新内容后再决定",
            number=ticket.number,
        )


def _change(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    action: str,
    expected: Expected,
    rule: Rule,
    note: dict[str, Any] | None = None,
) -> Changed:
    at = app.clock.now()
    with unit_of_work(app) as session:
        ticket = lock_ticket(session, ref)
        check_claim(app, actor, ticket, at)
        _check_version(ticket, expected)
        changes = rule(session, ticket, at)
        if ticket.status != TicketStatus.DRAFT:
            end_claim(ticket)
        if changes:
            audit(session, actor, action, ticket, {"changes": changes, **(note or {})}, at)
        stamp(session)  # the new version, answered before the commit
        shown = to_dict(ticket, show_phone=True, history_days=app.settings.duplicates.history_days)
        return Changed(ticket.id, ticket.number, changes, shown, version(ticket))


def _closing(session: Session, ticket: Ticket, at: datetime, changes: Changes) -> Changes:
    """A completed or rejected ticket is no longer under supervision (督办)."""
    supervision.close_open(session, ticket, at)
    return changes


def accept(
    app: Hotline, actor: Actor, ref: str | int, *, expected_version: Expected = None
) -> Changed:
    """受理 a draft."""
    return _change(
        app, actor, ref, "ticket.accept", expected_version, lambda _s, t, at: rules.accept(t, at)
    )


def update(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    fields: Mapping[str, Any],
    *,
    expected_version: Expected = None,
) -> Changed:
    """Correct fields (see `ticket_rules.update`); a change of nothing writes nothing."""
    return _change(
        app,
        actor,
        ref,
        "ticket.update",
        expected_version,
        lambda _s, t, at: rules.update(app, t, fields, at),
    )


def mark_duplicate(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    original: str | int,
    *,
    expected_version: Expected = None,
) -> Changed:
    """重复件: the draft repeats `original`. NotFound(original=...) when there is no such ticket."""

    def rule(session: Session, ticket: Ticket, at: datetime) -> Changes:
        found = ticket_id(session, original) if str(original) else None
        first = session.get(Ticket, found) if found is not None else None
        if first is None:
            raise NotFound(
                f"no ticket {original or '(none given)'} to be the original",
                zh=f"找不到原工单 {original}" if original else "请选择原工单",
                original=str(original),
            )
        return rules.mark_duplicate(ticket, first, at)

    return _change(app, actor, ref, "ticket.duplicate", expected_version, rule)


def reject(
    app: Hotline, actor: Actor, ref: str | int, reason: str, *, expected_version: Expected = None
) -> Changed:
    """不予受理, with the reason told to the caller."""
    return _change(
        app,
        actor,
        ref,
        "ticket.reject",
        expected_version,
        lambda s, t, at: _closing(s, t, at, rules.reject_out_of_scope(t, reason, at)),
    )


def complete(
    app: Hotline, actor: Actor, ref: str | int, note: str, *, expected_version: Expected = None
) -> Changed:
    """办结 with a result note (a draft is accepted first, by `accept`'s rules)."""
    return _change(
        app,
        actor,
        ref,
        "ticket.complete",
        expected_version,
        lambda s, t, at: _closing(s, t, at, rules.complete(t, note, at)),
    )


def answer_from_article(
    app: Hotline,
    actor: Actor,
    ref: str | int,
    article_id: int,
    *,
    expected_version: Expected = None,
) -> Changed:
    """直接办结 a 咨询 ticket with a knowledge-base article as the answer."""

    def rule(session: Session, ticket: Ticket, at: datetime) -> Changes:
        article = session.get(KbArticle, article_id)
        if article is None:
            raise NotFound(f"no article {article_id}")
        return rules.answer_directly(ticket, article, at.astimezone(app.settings.tz).date(), at)

    return _change(
        app, actor, ref, "ticket.answer", expected_version, rule, note={"article": article_id}
    )


def reopen(
    app: Hotline, actor: Actor, ref: str | int, reason: str, *, expected_version: Expected = None
) -> Changed:
    """重办: a completed ticket goes back to work; the reason is kept in the audit row."""

    why = rules.required(reason, "give the reason the ticket is handled again", "请填写重办原因")
    return _change(
        app,
        actor,
        ref,
        "ticket.reopen",
        expected_version,
        lambda _s, t, at: rules.reopen(t, at),
        {"reason": why},
    )


def record_survey_outcome(
    session: Session,
    actor: Actor,
    ticket_id_: int,
    score: str,
    at: datetime,
    resolved: str | None = None,
) -> Changes:
    """What a survey answer does to its ticket, in the caller's unit of work (the call's
    event transaction already holds the attempt): the ticket row is locked, the rule
    applied and the change audited."""
    ticket = locked(session, Ticket, ticket_id_)
    if ticket is None:
        return {}
    changes = rules.survey_outcome(ticket, score, at, resolved)
    if changes:
        audit(session, actor, "ticket.survey", ticket, {"changes": changes}, at)
    return changes
