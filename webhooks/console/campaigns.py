"""Satisfaction callback campaigns: create one (tickets completed in a date range, or
an uploaded list), start, pause and resume it; progress, 满意率, 回复率 and what the
unsatisfied citizens said (不满意原因) per campaign."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ivr.phones import mask_text
from ivr.queries.campaigns import all_campaigns
from ivr.queries.survey_reasons import campaign_reasons
from ivr.reports.surveys import report
from ivr.services import ServiceError
from ivr.services.campaigns import (
    PAUSABLE,
    STATUS_ZH,
    VERB_ZH,
    create_campaign,
    create_campaign_from_csv,
    pause_campaign,
    resume_campaign,
    start_campaign,
)
from ivr.store.models import Role
from ivr.surveys.campaigns import Filters
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, require, viewer

OUTCOME_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "no_response": "未评价",
}
# An uploaded list: `ticket number,phone` lines, UTF-8 (with or without a BOM).
MAX_UPLOAD = 2 * 1024 * 1024
_LINE = re.compile(r"line (\d+):")
VERBS = {"start": start_campaign, "pause": pause_campaign, "resume": resume_campaign}


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(request.form.get(name, "")) if request.form.get(name) else None
    except ValueError:
        return None


@bp.get("/campaigns")
@require(Role.SUPERVISOR)
def campaigns() -> Any:
    app = hotline()
    rates = {r.group: r for r in report(app, "campaign")}
    sees = viewer().sees_phone
    with app.db.read() as s:
        views = all_campaigns(s)
        said = campaign_reasons(s, [c.id for c in views])
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "status": c.status,
            "status_label": STATUS_ZH.get(c.status, c.status),
            "created": c.created_at.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M"),
            "total": c.attempts,
            "done": c.done,
            # Before any call has ended there is no rate to show, not 0 %.
            "rate": rates.get(str(c.id)) if c.done else None,
            "may_start": c.status == "created",
            "may_pause": c.status in PAUSABLE,
            "may_resume": c.status == "paused",
            "reasons": [
                {"number": r.ticket_number, "text": r.text if sees else mask_text(r.text)}
                for r in said.get(c.id, [])
            ],
        }
        for c in views
    ]
    settings = app.settings
    return render_template(
        "console/campaigns.html",
        campaigns=rows,
        labels=OUTCOME_LABELS,
        lines=[ln.number for ln in settings.lines],
        departments=[d.name for d in settings.departments],
        categories=[c.name for c in settings.categories],
    )


@bp.post("/campaigns")
@require(Role.SUPERVISOR)
def campaign_create() -> Any:
    """A new campaign (created, not yet calling) from a date range or an uploaded list."""
    app, form = hotline(), request.form
    name = form.get("name", "")
    upload = request.files.get("list")
    try:
        if upload is not None and upload.filename:
            raw = upload.read(MAX_UPLOAD + 1)
            if len(raw) > MAX_UPLOAD:
                flash("名单文件过大（最多 2 MB）", "error")
                return redirect(url_for("console.campaigns"), 303)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                flash("名单文件须为 UTF-8 编码的 CSV（工单号,电话）", "error")
                return redirect(url_for("console.campaigns"), 303)
            planned, problems = create_campaign_from_csv(
                app, acting(), name, text, upload.filename[:100]
            )
            flash(f"已创建回访活动 {planned.campaign_id}：计划 {planned.planned} 张工单", "ok")
            if problems:
                lines = "、".join(m.group(1) for p in problems if (m := _LINE.match(p)))
                flash(
                    f"名单中 {len(problems)} 行未计划（第 {lines} 行）："
                    "工单号不存在、电话无效或重复",
                    "error",
                )
        else:
            filters = Filters(
                _day("from"),
                _day("to"),
                form.get("line") or None,
                form.get("department") or None,
                form.get("category") or None,
            )
            planned = create_campaign(app, acting(), name, filters)
            flash(f"已创建回访活动 {planned.campaign_id}：计划 {planned.planned} 张工单", "ok")
    except ServiceError as exc:
        flash(exc.zh, "error")
    return redirect(url_for("console.campaigns"), 303)


@bp.post("/campaigns/<int:campaign_id>/<any(start, pause, resume):verb>")
@require(Role.SUPERVISOR)
def campaign_status(campaign_id: int, verb: str) -> Any:
    try:
        VERBS[verb](hotline(), acting(), campaign_id)
    except ServiceError as exc:
        flash(exc.zh, "error")
    else:
        flash(f"回访活动 {campaign_id} 已{VERB_ZH[verb]}", "ok")
    return redirect(url_for("console.campaigns"), 303)
