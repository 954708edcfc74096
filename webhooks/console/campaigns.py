"""Satisfaction callback campaigns: progress and 满意率 per campaign; pause and resume."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from ivr.reports.surveys import report
from ivr.store.models import Campaign, Role
from ivr.surveys.campaigns import CampaignError, progress, set_status
from webhooks.console import bp
from webhooks.console.auth import hotline, record, require

STATUS_NAMES = ("planned", "claimed", "dialing", "done")
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
    with app.db.session() as s:
        rows = []
        for c in s.scalars(select(Campaign).order_by(Campaign.id.desc())):
            counts = progress(s, c.id)
            total = sum(v for k, v in counts.items() if not k.startswith("outcome:"))
            rows.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "status": c.status,
                    "created": c.created_at.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M"),
                    "total": total,
                    "done": counts.get("done", 0),
                    "counts": counts,
                    "outcomes": {
                        k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("outcome:")
                    },
                    "rate": rates.get(str(c.id)),
                }
            )
    return render_template("console/campaigns.html", campaigns=rows, labels=OUTCOME_LABELS)


@bp.post("/campaigns/<int:campaign_id>/<any(pause, resume):verb>")
@require(Role.SUPERVISOR)
def campaign_status(campaign_id: int, verb: str) -> Any:
    app = hotline()
    status = "paused" if verb == "pause" else "running"
    try:
        set_status(app, campaign_id, status)
    except CampaignError as exc:
        flash(str(exc), "error")
    else:
        with app.db.session() as s:
            record(s, f"campaign.{verb}", None, {"campaign": campaign_id})
        flash(f"活动 {campaign_id}: {status}", "ok")
    return redirect(url_for("console.campaigns"), 303)
