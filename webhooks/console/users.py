"""Accounts for admins: create, change role, disable, reset password; API tokens: issue,
list with last use, revoke (all audited, through ivr.services.accounts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, flash, make_response, redirect, render_template, request, url_for

from ivr.accounts import ROLES
from ivr.queries.accounts import all_users, tokens
from ivr.services import NotFound, ServiceError
from ivr.services.accounts import create_user, issue_token, revoke_token, update_user
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, require

TOKEN_STATES = {"live": "有效", "expired": "已过期", "revoked": "已撤销"}


def _when(at: datetime | None) -> str:
    return at.astimezone(hotline().settings.tz).strftime("%Y-%m-%d %H:%M") if at else "—"


@bp.get("/users")
@require(Role.ADMIN)
def users(new_token: dict[str, str] | None = None) -> Any:
    app = hotline()
    now = app.clock.now()
    with app.db.read() as s:
        accounts = all_users(s)
        token_rows = [
            {
                "id": t.id,
                "username": t.username,
                "name": t.name,
                "state": t.state(now),
                "state_label": TOKEN_STATES[t.state(now)],
                "created": _when(t.created_at),
                "expires": _when(t.expires_at),
                "last_used": _when(t.last_used_at) if t.last_used_at else "从未使用",
            }
            for t in tokens(s)
        ]
    rows = [
        {
            "id": u.id,
            "username": u.username,
            "role": u.role,
            "active": u.active,
            "created": u.created_at.astimezone(app.settings.tz).strftime("%Y-%m-%d"),
            "tokens": u.live_tokens,
        }
        for u in accounts
    ]
    return render_template(
        "console/users.html", users=rows, roles=ROLES, tokens=token_rows, new_token=new_token
    )


@bp.post("/users")
@require(Role.ADMIN)
def user_create() -> Any:
    username = request.form.get("username", "").strip()
    try:
        create_user(
            hotline(),
            acting(),
            username,
            request.form.get("password", ""),
            request.form.get("role", ""),
        )
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(f"已添加用户 {username}", "ok")
    return redirect(url_for("console.users"), 303)


@bp.post("/users/<int:user_id>")
@require(Role.ADMIN)
def user_update(user_id: int) -> Any:
    form = request.form
    try:
        updated = update_user(
            hotline(),
            acting(),
            user_id,
            role=form.get("role") or None,
            active=form.get("active") == "on",  # an unchecked box is not sent
            password=form.get("password") or None,
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(f"已更新用户 {updated.account.username}" if updated.changes else "没有修改", "ok")
    return redirect(url_for("console.users"), 303)


def _small_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


@bp.post("/tokens")
@require(Role.ADMIN)
def token_issue() -> Any:
    """A new token, shown on the page this once (never kept in a cookie or a log)."""
    name = request.form.get("name", "").strip()
    user_id = _small_int(request.form.get("user", ""))
    days_text = request.form.get("expires_days", "").strip()
    if user_id is None or (days_text and _small_int(days_text) is None):
        flash("请选择用户；有效天数应为 1 到 3650 的整数", "error")
        return redirect(url_for("console.users"), 303)
    try:
        token = issue_token(
            hotline(), acting(), user_id, name, expires_days=int(days_text) if days_text else None
        )
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("console.users"), 303)
    resp = make_response(users({"name": name, "token": token}))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/tokens/<int:token_id>/revoke")
@require(Role.ADMIN)
def token_revoke(token_id: int) -> Any:
    try:
        name = revoke_token(hotline(), acting(), token_id)
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(f"已撤销令牌 {name}", "ok")
    return redirect(url_for("console.users"), 303)
