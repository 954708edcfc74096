"""Ticket endpoints: list, get, update, accept, mark duplicate, reject, complete; all audited."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import update

from ivr.queries.tickets import MAX_ID, search
from ivr.store.models import Role, Ticket
from ivr.tickets import (
    Changes,
    TicketError,
    accept,
    complete,
    find,
    mark_duplicate,
    reject_out_of_scope,
    to_dict,
    update_fields,
)
from webhooks.api.errors import ApiError
from webhooks.api.params import (
    Completion,
    Duplicate,
    Rejection,
    TicketUpdate,
    encode_cursor,
    no_query,
    parse_body,
    ticket_query,
    update_context,
)
from webhooks.api.unit import Unit, bp, unit


def _findable(number: str) -> bool:
    """Whether `number` can name a ticket at all (a number, or an id the database can hold)."""
    if "\x00" in number:
        return False
    return not number.isdigit() or (number.isascii() and int(number) <= MAX_ID)


def _ticket(u: Unit, number: str, *, lock: bool = False) -> Ticket:
    ticket = find(u.session, number) if _findable(number) else None
    if ticket is None:
        raise ApiError(404, f"no ticket {number}")
    if lock:
        # One writer at a time per ticket, deciding on its latest state: a no-op UPDATE
        # takes the row lock on PostgreSQL and the database's write lock on SQLite
        # (which has no SELECT ... FOR UPDATE); then the ticket is read again.
        u.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(number=Ticket.number))
        u.session.refresh(ticket)
    return ticket


def _etag(ticket: Ticket) -> str:
    """The ticket's version: a digest of all it shows (whoever asks)."""
    shown = to_dict(ticket, show_phone=True, history_days=0)
    # Other tickets' changes (the caller's earlier tickets) are not this ticket's version.
    shown.pop("earlier_tickets")
    return hashlib.sha256(
        json.dumps(shown, sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()[:20]


def _shown(u: Unit, ticket: Ticket) -> Response:
    history = u.app.settings.duplicates.history_days
    resp = jsonify(to_dict(ticket, show_phone=u.caller.sees_phone, history_days=history))
    resp.set_etag(_etag(ticket))
    return resp


def _act(
    u: Unit, number: str, action: str, change: Callable[[Ticket], Changes]
) -> ResponseReturnValue:
    """Change one ticket under a row lock; a change its status does not allow is a 409."""
    ticket = _ticket(u, number, lock=True)
    if request.if_match and not request.if_match.contains(_etag(ticket)):
        raise ApiError(
            412,
            f"ticket {ticket.number} has changed since the copy you sent If-Match for: "
            "read it again and decide again",
            code="precondition_failed",
        )
    try:
        changes = change(ticket)
    except TicketError as exc:
        raise ApiError(409, str(exc), code="illegal_transition") from None
    u.audit(action, ticket, {"changes": changes})
    return _shown(u, ticket)


@bp.get("/tickets")
def list_tickets() -> ResponseReturnValue:
    with unit() as u:
        query, limit = ticket_query(request.args, u.app.settings)
        rows, next_id = search(u.session, query, u.app.settings.tz, limit)
        detail = {"query": request.args.to_dict(), "tickets": [t.number for t in rows]}
        history = u.app.settings.duplicates.history_days
        u.audit("tickets.list", None, detail)
        return jsonify(
            items=[to_dict(t, show_phone=u.caller.sees_phone, history_days=history) for t in rows],
            next_cursor=encode_cursor(next_id) if next_id is not None else None,
        )


@bp.get("/tickets/<number>")
def get_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        ticket = _ticket(u, number)
        u.audit("ticket.view", ticket, {})
        return _shown(u, ticket)


@bp.patch("/tickets/<number>")
def update_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        fields = parse_body(TicketUpdate, update_context(u.app.settings)).changes()
        if "address" in fields and fields["address"] is None:
            fields["address"] = ""  # null clears the address
        return _act(u, number, "ticket.update", lambda t: update_fields(u.app, t, fields, u.now))


@bp.post("/tickets/<number>/accept")
def accept_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        return _act(u, number, "ticket.accept", lambda t: accept(t, u.now))


@bp.post("/tickets/<number>/duplicate")
def mark_ticket_duplicate(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        of = parse_body(Duplicate).of
        original = find(u.session, of) if _findable(of) else None
        if original is None:
            detail = [{"field": "of", "message": f"no ticket {of}"}]
            raise ApiError(404, f"no ticket {of} to be the original", code="original_not_found",
                           details=detail)  # fmt: skip
        return _act(u, number, "ticket.duplicate", lambda t: mark_duplicate(t, original, u.now))


@bp.post("/tickets/<number>/reject")
def reject_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        reason = parse_body(Rejection).reason
        return _act(u, number, "ticket.reject", lambda t: reject_out_of_scope(t, reason, u.now))


@bp.post("/tickets/<number>/complete")
def complete_ticket(number: str) -> ResponseReturnValue:
    with unit(Role.SUPERVISOR) as u:
        no_query(request.args)
        note = parse_body(Completion).note
        return _act(u, number, "ticket.complete", lambda t: complete(t, note, u.now))
