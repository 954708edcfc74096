"""Repeat calls (重复件): the same request from the same caller or about the same place.

A draft duplicates an earlier ticket created within `duplicates.window_days` when
  - it comes from the same caller number, or names the same place (address_key), and
  - their statements ask for the same thing: content-word similarity
    (ivr.intake.similarity) of at least `min_similarity`, the place named in each
    left out (it is matched above; 停电 at two estates of one caller is one request).
The department is a boost, not a condition: two wordings of one request often
reach different departments (one matched a department keyword, the other fell
back to the line's default), but when both were routed by keywords to the same
department the match is more certain, so `department_boost` is added.

Both candidate queries are indexed: (caller_number, created_at) and
(address_key, created_at).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session, object_session

from ivr.intake.similarity import ContentWords, content_words
from ivr.store.models import Ticket, TicketStatus

if TYPE_CHECKING:
    from ivr.app import Hotline

__all__ = ["address_key", "duplicate_words", "earlier_tickets", "find_duplicate", "request_score"]

# Inside a building: 3栋, 2单元, 501室, 5楼, 8层 — the same place for a repeat call.
_INSIDE = re.compile(r"(?:附?\d+(?:号楼|栋|幢|单元|室|楼|层|弄))+$")
_HOUSING = re.compile(r"(?:小区|社区|新村|花园|村)$")
# The road in front of a housing estate (人民中路阳光花园小区): the estate names the place.
_ROAD_BEFORE = re.compile(r"^.{2,}?(?:大道|大街|路|街|巷)(?:\d+号)?(?=.{3,})")
_ESTATE_WORD = re.compile(r"(?:小区|社区|新村)$")
EARLIER_MAX = 20
KEY_MAX = 96  # tickets.address_key


def address_key(address: dict[str, Any] | None) -> str | None:
    """City + street place (建国路88号, 阳光花园), or None when no street was named.

    The city (first four adcode digits), not the district: callers often leave the
    district out, and road and 小区 names are practically unique within a city.
    """
    if not address or not address.get("street"):
        return None
    place = _INSIDE.sub("", str(address["street"]))
    if _HOUSING.search(place):
        place = _ROAD_BEFORE.sub("", place)
    place = _ESTATE_WORD.sub("", place) or place
    city = str(address.get("adcode") or "")[:4] or str(address.get("city") or "")
    return f"{city}|{place}"[:KEY_MAX]


# Whoever sets a ticket's address (the draft, an operator's edit) keeps the key in step.
@event.listens_for(Ticket.address, "set")
def _keep_address_key(ticket: Ticket, value: Any, _old: Any, _initiator: Any) -> None:
    ticket.address_key = address_key(value)


def _request_text(ticket: Ticket) -> str:
    """The statement without the place it names: where is matched by caller or address key."""
    text = ticket.statement
    for part in ("street", "district", "city", "province"):
        name = (ticket.address or {}).get(part)
        if name:
            text = text.replace(str(name), " ")
    return text


def duplicate_words(app: Hotline) -> ContentWords:
    """The content words statements are compared by (loaded on first use: seconds)."""
    keywords = [k for d in app.settings.departments for k in d.keywords]
    return content_words(app.settings.duplicates, keywords)


def request_score(app: Hotline, ticket: Ticket, other: Ticket) -> float:
    """How surely two tickets are the same request (0..1+boost)."""
    rules = app.settings.duplicates
    score = duplicate_words(app).similarity(_request_text(ticket), _request_text(other))
    routed = ticket.department_source == other.department_source == "keywords"
    if routed and ticket.department == other.department:
        score += rules.department_boost
    return score


def _candidates(app: Hotline, session: Session, ticket: Ticket) -> list[Ticket]:
    """Earlier tickets within the window from the same caller or about the same place,
    oldest first (rejected ones are no request to repeat)."""
    rules = app.settings.duplicates
    same = [Ticket.caller_number == ticket.caller_number] if ticket.caller_number else []
    if ticket.address_key:
        same.append(Ticket.address_key == ticket.address_key)
    if not same or not ticket.statement:
        return []
    since = ticket.created_at - timedelta(days=rules.window_days)
    return list(
        session.scalars(
            select(Ticket)
            .where(
                or_(*same),
                Ticket.created_at >= since,
                Ticket.created_at <= ticket.created_at,
                Ticket.status != TicketStatus.REJECTED,
                Ticket.id != ticket.id if ticket.id else True,
            )
            .order_by(Ticket.created_at, Ticket.id)
        )
    )


def find_duplicate(app: Hotline, session: Session, ticket: Ticket) -> Ticket | None:
    """The earliest ticket within the window that is the same request, or None."""
    for other in _candidates(app, session, ticket):
        if other is ticket or not other.statement:
            continue
        if request_score(app, ticket, other) >= app.settings.duplicates.min_similarity:
            return other.duplicate_of or other
    return None


def similar_tickets(
    app: Hotline, session: Session, ticket: Ticket, limit: int
) -> list[tuple[Ticket, float]]:
    """Originals the draft may repeat, likeliest first: the window's tickets from the same
    caller or place, each as the original it repeats, with how alike the requests are."""
    best: dict[int, tuple[Ticket, float]] = {}
    for other in _candidates(app, session, ticket):
        if other is ticket or not other.statement:
            continue
        original = other.duplicate_of or other
        score = request_score(app, ticket, other)
        if original.id != ticket.id and score > best.get(original.id, (original, -1.0))[1]:
            best[original.id] = (original, score)
    return sorted(best.values(), key=lambda pair: -pair[1])[:limit]


def earlier_tickets(ticket: Ticket, history_days: int) -> list[Ticket]:
    """The caller's tickets before this one within `history_days`, newest first.

    Read in the ticket's own session, so a page or API reply that already holds
    one needs no other.
    """
    session = object_session(ticket)
    if session is None or not ticket.caller_number or history_days <= 0:
        return []
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.caller_number == ticket.caller_number,
                Ticket.created_at >= ticket.created_at - timedelta(days=history_days),
                Ticket.created_at <= ticket.created_at,
                Ticket.id != ticket.id,
            )
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(EARLIER_MAX)
        )
    )
