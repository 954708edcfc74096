"""Sign-in, sessions, roles and CSRF for the console.

The session cookie (signed) holds the user id, the user's session version at
sign-in, when the session began and when it was last used, and a CSRF token. The
user row is read on every request: a disabled account, a new password, a changed
role or a sign-out (each bumps the version) ends every session of that user at its
next request, a copied cookie included; so do `console.idle_timeout_minutes`
without a request and `console.session_hours` after sign-in. The cookie is Secure
when the request came over TLS (directly, or as the trusted proxy says).

A second long-lived cookie names the accounts that signed in from this browser:
the per-username lockout does not apply to them (see ivr.services.accounts.sign_in).

Every POST to the console carries the session's CSRF token (form field
`csrf_token` or header X-CSRF-Token) or is refused with 400.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ivr.accounts import can_see_phone, has_role
from ivr.app import Hotline
from ivr.privacy import redact
from ivr.queries.accounts import active_user
from ivr.services import Actor, audit
from ivr.services.accounts import SignInResult, sign_in, sign_out
from ivr.store.models import Role, Ticket
from webhooks.console import bp

F = TypeVar("F", bound=Callable[..., Any])
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
KNOWN_COOKIE = "ivr_known"
MAX_KNOWN = 10
# The session's keys that make it a signed-in one.
SIGNED_IN = ("uid", "sv", "since", "seen")


class TlsAwareSessions(SecureCookieSessionInterface):
    """Session cookies marked Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return secure_cookies(app)


def secure_cookies(app: Flask) -> bool:
    return bool(app.config["SESSION_COOKIE_SECURE"]) or (
        has_request_context() and request.is_secure
    )


@dataclass(frozen=True)
class Viewer:
    id: int
    username: str
    role: str
    session_version: int

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


def _session_fresh(now: float) -> bool:
    rules = hotline().settings.console
    since, seen = session.get("since"), session.get("seen")
    return (
        isinstance(since, float | int)
        and isinstance(seen, float | int)
        and now - since <= rules.session_hours * 3600
        and now - seen <= rules.idle_timeout_minutes * 60
    )


def session_valid(s: Session, uid: int, session_version: int) -> bool:
    """Whether a session signed in as `uid` at `session_version` is still good."""
    return active_user(s, uid, session_version) is not None


@bp.before_request
def _load_viewer() -> None:
    g.viewer = None
    uid = session.get("uid")
    if uid is None:
        return
    now = hotline().clock.now().timestamp()
    if _session_fresh(now):
        with hotline().db.read() as s:
            user = active_user(s, uid, session.get("sv"))
            if user is not None:
                g.viewer = Viewer(user.id, user.username, user.role, user.session_version)
    if g.viewer is None:
        for key in SIGNED_IN:
            session.pop(key, None)
    else:
        session["seen"] = now


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
    app = hotline()
    known = _known_accounts()
    got = sign_in(
        app,
        username,
        request.form.get("password", ""),
        (request.remote_addr or "?")[:64],
        known_browser=username in known,
    )
    again = request.form.get("next", "")
    if got.result in (SignInResult.ADDRESS_LOCKED, SignInResult.ACCOUNT_LOCKED):
        minutes = app.settings.console.lockout_minutes
        flash(f"登录失败次数过多，请 {minutes} 分钟后再试", "error")
        return render_template("console/login.html", next=again), 429
    if got.result is not SignInResult.OK:
        flash("用户名或密码错误", "error")
        return render_template("console/login.html", next=again), 401
    session.clear()  # a fresh session (and CSRF token) after sign-in
    now = app.clock.now().timestamp()
    session.update({"uid": got.user_id, "sv": got.session_version, "since": now, "seen": now})
    csrf_token()
    resp = redirect(_safe_next(request.form.get("next")))
    _remember_account(resp, [username, *(k for k in known if k != username)])
    return resp


def _known_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="ivr-known-browser")


def _known_accounts() -> list[str]:
    """The accounts that signed in from this browser within `console.device_days`."""
    raw = request.cookies.get(KNOWN_COOKIE)
    if not raw:
        return []
    days = hotline().settings.console.device_days
    try:
        names = _known_serializer().loads(raw, max_age=days * 86400)
    except BadSignature:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _remember_account(resp: Response, names: list[str]) -> None:
    resp.set_cookie(
        KNOWN_COOKIE,
        _known_serializer().dumps(names[:MAX_KNOWN]),
        max_age=hotline().settings.console.device_days * 86400,
        path="/console",
        secure=secure_cookies(current_app),
        httponly=True,
        samesite="Lax",
    )


@bp.post("/logout")
def logout() -> Any:
    v = g.get("viewer")
    if v is not None:
        sign_out(hotline(), v.id)
    session.clear()
    return redirect(url_for("console.login"))
