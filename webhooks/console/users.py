"""Accounts for admins: create, change role, disable, reset password (all audited)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from ivr.accounts import ROLES
from ivr.queries.accounts import all_users
from ivr.services import NotFound, ServiceError
from ivr.services.accounts import create_user, update_user
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, require


@bp.get("/users")
@require(Role.ADMIN)
def users() -> Any:
    app = hotline()
    with app.db.read() as s:
        accounts = all_users(s)
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
    return render_template("console/users.html", users=rows, roles=ROLES)


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
