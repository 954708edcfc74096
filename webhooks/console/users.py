"""Accounts for admins: create, change role, disable, reset password (all audited)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ivr.accounts import ROLES, AccountError, create_user, set_password, set_role
from ivr.store.models import ApiToken, Role, User
from webhooks.console import bp
from webhooks.console.auth import hotline, record, require, viewer


@bp.get("/users")
@require(Role.ADMIN)
def users() -> Any:
    app = hotline()
    live_tokens = (
        select(ApiToken.user_id, func.count().label("n"))
        .where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
        .subquery()
    )
    with app.db.session() as s:
        rows = [
            {
                "id": u.id,
                "username": u.username,
                "role": u.role,
                "active": u.active,
                "created": u.created_at.astimezone(app.settings.tz).strftime("%Y-%m-%d"),
                "tokens": n or 0,
            }
            for u, n in s.execute(
                select(User, live_tokens.c.n)
                .outerjoin(live_tokens, live_tokens.c.user_id == User.id)
                .order_by(User.username)
            )
        ]
    return render_template("console/users.html", users=rows, roles=ROLES)


@bp.post("/users")
@require(Role.ADMIN)
def user_create() -> Any:
    app = hotline()
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "")
    try:
        with app.db.session() as s:
            create_user(s, username, request.form.get("password", ""), role, app.clock.now())
            record(s, "user.create", None, {"username": username, "role": role})
    except AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(f"已添加用户 {username}", "ok")
    return redirect(url_for("console.users"), 303)


@bp.post("/users/<int:user_id>")
@require(Role.ADMIN)
def user_update(user_id: int) -> Any:
    app = hotline()
    form = request.form
    try:
        with app.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                abort(404)
            changes: dict[str, Any] = {}
            role, active = form.get("role", user.role), form.get("active") == "on"
            if user.id == viewer().id and (role != user.role or not active):
                raise AccountError("you cannot demote or disable your own account")
            if role != user.role:
                changes["role"] = {"old": user.role, "new": role}
                set_role(user, role)
            if active != user.active:
                changes["active"] = {"old": user.active, "new": active}
                user.active = active
            if form.get("password"):
                set_password(user, form["password"])
                changes["password"] = "changed"  # never the password itself
            if changes:
                record(s, "user.update", None, {"username": user.username, **changes})
            name = user.username
    except AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(f"已更新用户 {name}" if changes else "没有修改", "ok")
    return redirect(url_for("console.users"), 303)
