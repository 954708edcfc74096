"""Campaign endpoints (supervisor): progress, results (满意率) and what unsatisfied citizens
said (不满意原因); pause and resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, cast

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ivr.app import Hotline
from ivr.privacy import redact
from ivr.queries.campaigns import CampaignView, all_campaigns, one_campaign
from ivr.queries.survey_reasons import Reason, campaign_reasons
from ivr.queries.tickets import MAX_ID
from ivr.reports.surveys import Dimension, Row, report, total
from ivr.services import Actor, ServiceError
from ivr.services.campaigns import pause_campaign, resume_campaign
from ivr.store.models import Role
from webhooks.api.errors import ApiError, from_service
from webhooks.api.params import no_query, report_dimension
from webhooks.api.unit import authorized, bp, hotline, unit


def _campaign(c: CampaignView) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "filters": c.filters,
        "created_at": c.created_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
        "progress": c.progress,
    }


def _reason(r: Reason, sees_phone: bool) -> dict[str, Any]:
    """不满意原因 as the console's campaign report lists it: the ticket and what was said."""
    return {"ticket": r.ticket_number, "at": r.at.isoformat(), "text": redact(r.text, sees_phone)}


def _row(row: Row) -> dict[str, Any]:
    return {
        **asdict(row),
        "responses": row.responses,
        "satisfaction_rate": row.satisfaction_rate,
        "response_rate": row.response_rate,
    }


@bp.get("/campaigns")
def list_campaigns() -> ResponseReturnValue:
    with unit(Role.SUPERVISOR) as u:
        no_query(request.args)
        rows = all_campaigns(u.session)
        u.audit("campaigns.list", None, {"campaigns": [c.id for c in rows]})
        return jsonify(items=[_campaign(c) for c in rows])


@bp.get(f"/campaigns/<int(min=1, max={MAX_ID}):campaign_id>")
def get_campaign(campaign_id: int) -> ResponseReturnValue:
    with unit(Role.SUPERVISOR) as u:
        by = cast(Dimension, report_dimension(request.args))
        c = one_campaign(u.session, campaign_id)
        if c is None:
            raise ApiError(404, f"no campaign {campaign_id}")
        rows = report(u.app, by, campaign_id)
        said = campaign_reasons(u.session, [campaign_id]).get(campaign_id, [])
        u.audit("campaign.view", None, {"campaign": campaign_id, "by": by})
        return jsonify(
            **_campaign(c),
            report={"by": by, "rows": [_row(r) for r in rows], "total": _row(total(rows))},
            unsatisfied_reasons=[_reason(r, u.caller.sees_phone) for r in said],
        )


@bp.post(f"/campaigns/<int(min=1, max={MAX_ID}):campaign_id>/pause")
def pause(campaign_id: int) -> ResponseReturnValue:
    return _change(campaign_id, pause_campaign)


@bp.post(f"/campaigns/<int(min=1, max={MAX_ID}):campaign_id>/resume")
def resume(campaign_id: int) -> ResponseReturnValue:
    return _change(campaign_id, resume_campaign)


def _change(campaign_id: int, change: Callable[[Hotline, Actor, int], None]) -> ResponseReturnValue:
    caller = authorized(Role.SUPERVISOR)
    no_query(request.args)
    app = hotline()
    try:
        change(app, Actor.api(caller.token_name), campaign_id)
    except ServiceError as exc:
        raise from_service(exc) from None
    with app.db.read() as s:
        campaign = one_campaign(s, campaign_id)
    if campaign is None:
        raise ApiError(404, f"no campaign {campaign_id}")
    return jsonify(_campaign(campaign))
