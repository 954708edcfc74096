"""GET /api/reports/indicators (supervisor): the office's indicators (考核指标)."""

from __future__ import annotations

from typing import cast

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ivr.reports.indicators import Grouping, PeriodKind, indicators
from ivr.store.models import Role
from webhooks.api.params import indicator_query
from webhooks.api.unit import bp, unit


@bp.get("/reports/indicators")
def get_indicators() -> ResponseReturnValue:
    with unit(Role.SUPERVISOR) as u:
        start, end, by, period = indicator_query(request.args, u.app.today())
        rows = indicators(u.app, start, end, cast(Grouping, by), cast(PeriodKind, period))
        detail = {"from": start.isoformat(), "to": end.isoformat(), "by": by, "period": period}
        u.audit("report.indicators", None, detail)
        return jsonify(**detail, rows=[r.as_dict() for r in rows])
