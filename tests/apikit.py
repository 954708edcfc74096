"""The JSON API under test: the real Flask app, users of each role with tokens, seeded tickets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.kb.importer import ArticleData
from ivr.services.accounts import create_user, issue_token
from ivr.services.campaigns import create_campaign
from ivr.services.kb import save_article
from ivr.services.tickets import complete
from ivr.store import SurveyAttempt
from ivr.surveys.outcomes import record_score
from webhooks import create_app

from .conftest import settings_for
from .consolekit import SETUP, audit_log

CALLER = "13800138000"
NOISE = "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点"
EXPIRED_DRUGS = "我要举报一家药店在卖过期的药品"
GAS_LEAK = "我们这里燃气管道好像漏气了闻到很大的味道"
CONSULTATION = "我想问一下社保卡丢了怎么补办"


@dataclass
class ApiRig:
    hotline: Hotline
    app: Flask
    client: FlaskClient
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(
        self, method: str, path: str, role: str | None = "operator", **kwargs: Any
    ) -> TestResponse:
        headers = {**(self.auth(role) if role else {}), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def draft(self, text: str = NOISE, *, line: str = "12315", digits: str = "2") -> str:
        """A draft ticket made by a simulated call, as the IVR makes them; its number."""
        sim = simulate_inbound(self.hotline, line=line, caller=CALLER, digits=digits, text=text)
        assert sim.ticket is not None
        return str(sim.ticket["number"])

    def completed(self, text: str = NOISE) -> str:
        number = self.draft(text)
        complete(self.hotline, SETUP, number, "已协调城管执法")
        return number

    def campaign_with_scores(self, scores: list[str]) -> int:
        """A campaign over freshly completed tickets whose callees gave `scores`."""
        for _ in scores:
            self.completed()
        campaign_id, planned = create_campaign(self.hotline, SETUP, "11月回访")
        assert planned >= len(scores)
        now = self.hotline.clock.now()
        with self.hotline.db.session() as s:
            attempts = s.scalars(
                select(SurveyAttempt)
                .where(SurveyAttempt.campaign_id == campaign_id)
                .order_by(SurveyAttempt.id)
            ).all()
            for attempt, score in zip(attempts, scores, strict=False):
                attempt.status = "done"
                record_score(s, {"attempt_id": attempt.id, "score": score}, now)
        return campaign_id

    def article(self) -> int:
        """A knowledge-base article that answers CONSULTATION; its id."""
        card = ArticleData("社会保障卡补办", "请先挂失，再到银行网点补办。", "", ("社保卡", "补办"))
        return save_article(self.hotline, SETUP, card)

    def audit_log(self) -> list[tuple[str, str, int | None, dict[str, Any]]]:
        return audit_log(self.hotline)


ROLES = ("operator", "supervisor", "admin")


@contextmanager
def api_rig(hotline: Hotline) -> Iterator[ApiRig]:
    app = create_app(hotline)
    rig = ApiRig(hotline, app, app.test_client())
    for role in ROLES:
        create_user(hotline, SETUP, f"{role}-user", "password-123", role)
        rig.tokens[role] = issue_token(hotline, SETUP, f"{role}-user", f"platform-{role}")
    try:
        yield rig
    finally:
        app.extensions["jobs"].close(wait=True, timeout=30)


# The API runs on SQLite (embedded default) and on PostgreSQL (production).
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def hotline_on(request: pytest.FixtureRequest, backend: str) -> Iterator[Hotline]:
    """The `hotline` fixture's app, or the same on a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield request.getfixturevalue("hotline")
        return
    url = request.getfixturevalue("postgres_url")
    base, tmp = request.getfixturevalue("base_settings"), request.getfixturevalue("tmp_path")
    request.getfixturevalue("migrate")(url)
    app = Hotline.open(settings_for(base, tmp, url), request.getfixturevalue("clock"))
    try:
        yield app
    finally:
        app.close()
