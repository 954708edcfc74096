"""Satisfaction callback campaigns: progress and 满意率 per campaign; pause and resume."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for

from ivr.queries.campaigns import all_campaigns
from ivr.reports.surveys import report
from ivr.services import ServiceError
from ivr.services.campaigns import PAUSABLE, RESUMABLE, pause_campaign, resume_campaign
from ivr.store.models import Role
from webhooks.console import bp
from webhooks.console.auth import acting, hotline, require

OUTCOME_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
    "no_response": "未评价",
}


@bp.get("/campaigns")
@require(Role.SUPERVISOR)
def campaigns() -> Any:
    app = hotline()
    rates = {r.group: r for r in report(app, "campaign")}
    with app.db.read() as s:
        views = all_campaigns(s)
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "status": c.status,
            "created": c.created_at.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M"),
            "total": c.attempts,
            "done": c.done,
            "rate": rates.get(str(c.id)),
            "may_pause": c.status in PAUSABLE,
            "may_resume": c.status in RESUMABLE,
        }
        for c in views
    ]
    return render_template("console/campaigns.html", campaigns=rows, labels=OUTCOME_LABELS)


@bp.post("/campaigns/<int:campaign_id>/<any(pause, resume):verb>")
@require(Role.SUPERVISOR)
def campaign_status(campaign_id: int, verb: str) -> Any:
    change = pause_campaign if verb == "pause" else resume_campaign
    try:
        change(hotline(), acting(), campaign_id)
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(f"活动 {campaign_id}: {'paused' if verb == 'pause' else 'running'}", "ok")
    return redirect(url_for("console.campaigns"), 303)
