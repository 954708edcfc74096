"""The API blueprint and its unit of work: one transaction per request, caller checked first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from ivr.app import Hotline
from ivr.services import audit
from ivr.store.models import Role, Ticket
from webhooks.api import errors
from webhooks.api.auth import Caller, authenticate

bp = Blueprint("api", __name__, url_prefix="/api")
bp.register_error_handler(errors.ApiError, errors.error_response)
bp.register_error_handler(HTTPException, errors.http_error)
bp.register_error_handler(Exception, errors.unexpected)

# Bodies are small JSON documents; anything larger is refused with 413.
MAX_BODY = 64 * 1024


@bp.before_request
def _limit_body() -> None:
    request.max_content_length = MAX_BODY


def hotline() -> Hotline:
    app: Hotline = current_app.extensions["hotline"]
    return app


@dataclass
class Unit:
    """What a request works with: the app, its transaction, its caller and the time."""

    app: Hotline
    session: Session
    caller: Caller
    now: datetime

    def audit(self, action: str, ticket: Ticket | None, detail: dict[str, Any]) -> None:
        audit(self.session, self.caller.actor, action, ticket, detail, self.now)


def authorized(role: str = Role.OPERATOR) -> Caller:
    """The caller, authenticated (401) and allowed `role` (403), in a short unit of its own.

    For endpoints that then call a service function, which opens its own unit of
    work (on SQLite a second write unit inside `unit` would wait for the first).
    """
    app = hotline()
    with app.db.session() as session:
        caller = authenticate(session, app.clock.now())
        caller.require(role)
    return caller


@contextmanager
def unit(role: str = Role.OPERATOR) -> Iterator[Unit]:
    """Authenticate (401), check the role (403), then work in one committed transaction."""
    app = hotline()
    now = app.clock.now()
    with app.db.session() as session:
        caller = authenticate(session, now)
        caller.require(role)
        yield Unit(app, session, caller, now)
