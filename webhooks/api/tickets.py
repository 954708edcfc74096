"""Ticket endpoints: list, get, update, accept, complete. Each view and change is audited."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ivr.store.models import Role, Ticket
from ivr.ticket_query import MAX_ID, search
from ivr.tickets import Changes, TicketError, accept, complete, find, to_dict, update_fields
from webhooks.api.errors import ApiError
from webhooks.api.params import (
    Completion,
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
    if lock:  # one writer at a time per ticket (SELECT ... FOR UPDATE where supported)
        u.session.refresh(ticket, with_for_update=True)
    return ticket


def _shown(u: Unit, ticket: Ticket) -> ResponseReturnValue:
    return jsonify(to_dict(ticket, show_phone=u.caller.sees_phone))


def _changed(u: Unit, action: str, ticket: Ticket, changes: Changes) -> ResponseReturnValue:
    u.audit(action, ticket, {"changes": changes})
    return _shown(u, ticket)


def _conflict(exc: TicketError) -> ApiError:
    return ApiError(409, str(exc), code="illegal_transition")


@bp.get("/tickets")
def list_tickets() -> ResponseReturnValue:
    with unit() as u:
        query, limit = ticket_query(request.args, u.app.settings)
        rows, next_id = search(u.session, query, u.app.settings.tz, limit)
        u.audit(
            "list", None, {"query": request.args.to_dict(), "tickets": [t.number for t in rows]}
        )
        return jsonify(
            items=[to_dict(t, show_phone=u.caller.sees_phone) for t in rows],
            next_cursor=encode_cursor(next_id) if next_id is not None else None,
        )


@bp.get("/tickets/<number>")
def get_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        ticket = _ticket(u, number)
        u.audit("view", ticket, {})
        return _shown(u, ticket)


@bp.patch("/tickets/<number>")
def update_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        body = parse_body(TicketUpdate, update_context(u.app.settings))
        fields = body.changes()
        if "address" in fields and fields["address"] is None:
            fields["address"] = ""  # null clears the address
        ticket = _ticket(u, number, lock=True)
        try:
            changes = update_fields(u.app, ticket, fields, u.now)
        except TicketError as exc:
            raise _conflict(exc) from None
        return _changed(u, "update", ticket, changes)


@bp.post("/tickets/<number>/accept")
def accept_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        ticket = _ticket(u, number, lock=True)
        try:
            changes = accept(ticket, u.now)
        except TicketError as exc:
            raise _conflict(exc) from None
        return _changed(u, "accept", ticket, changes)


@bp.post("/tickets/<number>/complete")
def complete_ticket(number: str) -> ResponseReturnValue:
    with unit(Role.SUPERVISOR) as u:
        no_query(request.args)
        body = parse_body(Completion)
        ticket = _ticket(u, number, lock=True)
        try:
            changes = complete(ticket, body.note, u.now)
        except TicketError as exc:
            raise _conflict(exc) from None
        return _changed(u, "complete", ticket, changes)
