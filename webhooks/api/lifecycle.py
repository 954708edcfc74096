"""The loop's endpoints: 延期, 退回, re-dispatch, 复核, 督办 (and its list), contacts with
the caller (及时联系), manual callbacks (and their list). Changes are one service call each,
audited as api:<token name>."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ivr.phones import mask_number
from ivr.queries.lifecycle import callback_list, supervision_list
from ivr.services import Actor, lifecycle
from ivr.services.callbacks import record_callback
from ivr.services.contacts import record_contact
from ivr.store.models import Role
from webhooks.api.params import (
    Callback,
    Contact,
    Extension,
    Redispatch,
    Return,
    Review,
    Supervise,
    no_query,
    parse_body,
)
from webhooks.api.tickets import changed_response, if_match
from webhooks.api.unit import authorized, bp, hotline, unit


@bp.post("/tickets/<number>/extend")
def extend_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    body = parse_body(Extension)
    changed = lifecycle.extend(
        app,
        Actor.api(caller.token_name),
        number,
        body.workdays,
        body.reason,
        body.consent,
        expected_version=if_match(),
    )
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/return")
def return_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    body = parse_body(Return)
    changed = lifecycle.return_ticket(
        app,
        Actor.api(caller.token_name),
        number,
        body.reason,
        onsite=body.onsite,
        expected_version=if_match(),
    )
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/redispatch")
def redispatch_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    department = parse_body(Redispatch).department
    changed = lifecycle.redispatch(
        app, Actor.api(caller.token_name), number, department, expected_version=if_match()
    )
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/review")
def review_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized(Role.SUPERVISOR)
    no_query(request.args)
    body = parse_body(Review)
    changed = lifecycle.review(
        app,
        Actor.api(caller.token_name),
        number,
        body.decision,
        body.reason,
        expected_version=if_match(),
    )
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/supervise")
def supervise_ticket(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized(Role.SUPERVISOR)
    no_query(request.args)
    reason = parse_body(Supervise).reason
    shown = lifecycle.supervise(app, Actor.api(caller.token_name), number, reason)
    return jsonify(number=shown, supervised=True)


@bp.post("/tickets/<number>/contacts")
def record_ticket_contact(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    body = parse_body(Contact)
    changed = record_contact(
        app,
        Actor.api(caller.token_name),
        number,
        at=body.when(),
        department=body.department,
        channel=body.channel,
        note=body.note,
        expected_version=if_match(),
    )
    return changed_response(caller, changed)


@bp.post("/tickets/<number>/callbacks")
def record_ticket_callback(number: str) -> ResponseReturnValue:
    app, caller = hotline(), authorized()
    no_query(request.args)
    body = parse_body(Callback)
    attempt = record_callback(
        app, Actor.api(caller.token_name), number, body.score, body.resolved, body.note
    )
    return jsonify(number=number, attempt_id=attempt), 201


def _caller(number: str | None, sees_phone: bool) -> str:
    return (number or "") if sees_phone else mask_number(number)


@bp.get("/supervision")
def list_supervision() -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        tz = u.app.settings.tz
        items: list[dict[str, Any]] = [
            {
                "number": r.ticket.number,
                "status": r.ticket.status,
                "department": r.ticket.department,
                "due_date": r.ticket.due_date.isoformat(),
                "caller": _caller(r.ticket.caller_number, u.caller.sees_phone),
                "source": r.source,
                "reason": r.reason,
                "since": r.since.astimezone(tz).isoformat(),
                "by": r.actor,
            }
            for r in supervision_list(u.session)
        ]
        u.audit("supervision.list", None, {"tickets": [i["number"] for i in items]})
        return jsonify(items=items)


@bp.get("/callbacks")
def list_callbacks() -> ResponseReturnValue:
    with unit() as u:
        no_query(request.args)
        items = [
            {
                "number": i.ticket.number,
                "status": i.ticket.status,
                "department": i.ticket.department,
                "caller": _caller(i.ticket.caller_number, u.caller.sees_phone),
                "reasons": i.reasons,
            }
            for i in callback_list(u.session)
        ]
        u.audit("callbacks.list", None, {"tickets": [i["number"] for i in items]})
        return jsonify(items=items)
