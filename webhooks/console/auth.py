"""Sign-in, roles and CSRF for the console.

The session cookie holds only the user id and a CSRF token; the user row is
read on every request, so a disabled account or a changed role takes effect at
once. Every POST to the console carries the session's CSRF token (form field
`csrf_token` or header X-CSRF-Token) or is refused with 400.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy.orm import Session

from ivr.accounts import authenticate, can_see_phone, has_role, recent_failed_logins
from ivr.app import Hotline
from ivr.privacy import redact
from ivr.queries.accounts import active_user
from ivr.services import Actor, audit
from ivr.store.models import Role, Ticket
from webhooks.console import bp

F = TypeVar("F", bound=Callable[..., Any])
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Viewer:
    id: int
    username: str
    role: str

    @property
    def sees_phone(self) -> bool:
        return can_see_phone(self.role)

    def may(self, role: str) -> bool:
        return has_role(self.role, role)


def hotline() -> Hotline:
    return cast(Hotline, current_app.extensions["hotline"])


def viewer() -> Viewer:
    return cast(Viewer, g.viewer)


def acting() -> Actor:
    """The signed-in user, as service functions and the audit log name them (`user:<name>`)."""
    return Actor.user(viewer().username)


def record(s: Session, action: str, ticket: Ticket | None, detail: dict[str, Any] | None) -> None:
    """Audit what the signed-in user just did."""
    audit(s, viewer().username, action, ticket, detail, hotline().clock.now())


def csrf_token() -> str:
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(session[CSRF_FIELD])


@bp.before_request
def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    expected = session.get(CSRF_FIELD) or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="missing or wrong CSRF token: reload the page and try again")


@bp.before_request
def _load_viewer() -> None:
    g.viewer = None
    uid = session.get("uid")
    if uid is None:
        return
    with hotline().db.read() as s:
        user = active_user(s, uid)
        if user is not None:
            g.viewer = Viewer(user.id, user.username, user.role)
    if g.viewer is None:
        session.pop("uid", None)


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "viewer": g.get("viewer"), "Role": Role}


def _wants_page() -> bool:
    """A person's browser (or no preference), not the event stream or a script."""
    best = request.accept_mimetypes.best_match(
        ["text/html", "text/event-stream", "application/json"]
    )
    return best in (None, "text/html")


@bp.app_template_filter("pii")
def _pii(text: str | None) -> str:
    """Free text with the phone numbers in it masked, unless the viewer may see them."""
    v = g.get("viewer")
    return redact(text or "", v is not None and v.sees_phone)


def require(role: str = Role.OPERATOR) -> Callable[[F], F]:
    """Signed-in users of at least `role`; others go to sign-in (or get 403)."""

    def wrap(view: F) -> F:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if g.get("viewer") is None:
                if request.method == "GET" and _wants_page():
                    return redirect(url_for("console.login", next=request.full_path))
                abort(401)
            if not viewer().may(role):
                abort(403, description=f"this needs the {role} role")
            return view(*args, **kwargs)

        return cast(F, inner)

    return wrap


def _safe_next(target: str | None) -> str:
    # Only back into the console: never an open redirect to another site.
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return url_for("console.queue")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()[:64] or "?"
    password = request.form.get("password", "")
    app = hotline()
    rules = app.settings.console
    now = app.clock.now()
    since = now - timedelta(minutes=rules.lockout_minutes)
    where = {"ip": request.remote_addr}
    with app.db.session() as s:
        locked = recent_failed_logins(s, username, since) >= rules.max_failed_logins
        user = None if locked else authenticate(s, username, password)
        if user is None:
            audit(s, username, "login.failed", None, {**where, "locked": locked}, now)
        else:
            audit(s, user.username, "login", None, where, now)
            uid = user.id
    if locked:
        flash(f"登录失败次数过多，请 {rules.lockout_minutes} 分钟后再试", "error")
        return render_template("console/login.html", next=request.form.get("next", "")), 429
    if user is None:
        flash("用户名或密码错误", "error")
        return render_template("console/login.html", next=request.form.get("next", "")), 401
    session.clear()  # a fresh session (and CSRF token) after sign-in
    session["uid"] = uid
    csrf_token()
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("console.login"))
