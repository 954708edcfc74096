"""Ticket endpoints: list, get, update, accept, mark duplicate, reject, complete; all audited.

Changes are one call each to `ivr.services.tickets` (which locks, checks and audits);
a refusal comes back as its ServiceError and is answered by `errors.service_error`.
"""

from __future__ import annotations

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from ivr.queries.tickets import find, search
from ivr.services import Actor
from ivr.services import tickets as service
from ivr.services.tickets import Changed, Expected
from ivr.store.models import Role
from ivr.tickets import masked, to_dict, to_dicts, version
from webhooks.api.auth import Caller
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
from webhooks.api.unit import authorized, bp, hotline, unit


def if_match() -> Expected:
    """The copies the caller sent If-Match for (None: no header, or `*`)."""
    if not request.if_match or request.if_match.star_tag:
        return None
    return request.if_match.as_set()


def changed_response(caller: Caller, changed: Changed) -> Response:
    shown = changed.shown if caller.sees_phone else masked(changed.shown)
    resp = jsonify(shown)
    resp.set_etag(changed.version)
    return resp


def _actor(caller: Caller) -> Actor:
    return Actor.api(caller.token_name)


@bp.get("/tickets")
def list_tickets() -> ResponseReturnValue:
    with unit() as u:
        query, limit = ticket_query(request.args, u.app.settings)
        rows, next_id = search(u.session, query, u.app.settings.tz, limit)
        detail = {"query": request.args.to_dict(), "tickets": [t.number for t in rows]}
        history = u.app.settings.duplicates.history_days
        u.audit("tickets.list", None, detail)
        return jsonify(
            items=to_dicts(rows, show_phone=u.caller.sees_phone, history_days=history),
            next_cursor=encode_cursor(next_id) if next_id is not None else None,
        )


@bp.get("/tickets/<number>")
def get_ticket(number: str) -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        ticket = find(u.session, number)
        if ticket is None:
            raise ApiError(404, f"no ticket {number}")
        u.audit("ticket.view", ticket, {})
        history = u.app.settings.duplicates.history_days
        resp = jsonify(to_dict(ticket, show_phone=u.caller.sees_phone, history_days=history))
        resp.set_etag(version(ticket))
        return resp


@bp.patch("/tickets/<number>")
def update_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    fields = parse_body(TicketUpdate, update_context(app.settings)).changes()
    if "address" in fields and fields["address"] is None:
        fields["address"] = ""  # null clears the address
    changed = service.update(app, _actor(caller), number, fields, expected_version=if_match())
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/accept")
def accept_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    changed = service.accept(app, _actor(caller), number, expected_version=if_match())
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/duplicate")
def mark_ticket_duplicate(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    of = parse_body(Duplicate).of
    changed = service.mark_duplicate(app, _actor(caller), number, of, expected_version=if_match())
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/reject")
def reject_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    reason = parse_body(Rejection).reason
    changed = service.reject(app, _actor(caller), number, reason, expected_version=if_match())
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/complete")
def complete_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized(Role.SUPERVISOR)
    no_query(request.args)
    note = parse_body(Completion).note
    changed = service.complete(app, _actor(caller), number, note, expected_version=if_match())
    return changed_response(caller, changed)
