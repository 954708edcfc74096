"""What a draft records about the intake model, and where the operator sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from ivr.app import Hotline
from ivr.config import Settings
from ivr.intake.corpus import corpus_files
from ivr.store import Ticket
from ivr.tickets import to_dict

from .conftest import settings_for
from .consolekit import browser, console_app, draft

pytestmark = pytest.mark.skipif(not corpus_files(), reason="no intake corpus shipped")

DRAIN = "我家门口的下水道堵住了污水漫出来了麻烦派人来通一下"


@pytest.fixture(params=[0.4, 1.0], ids=["configured", "strict"])
def settings(base_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The shipped threshold, and one no model output reaches (every field is low)."""
    base = settings_for(base_settings, tmp_path)
    intake = base.intake.model_copy(update={"low_confidence": request.param})
    return base.model_copy(update={"intake": intake})


@pytest.fixture
def app(hotline: Hotline) -> Iterator[Flask]:
    with console_app(hotline) as flask_app:
        yield flask_app


def test_draft_records_the_model_and_marks_low_confidence(hotline: Hotline, app: Flask) -> None:
    tid = draft(hotline, DRAIN, line="12345", digits="")
    with hotline.db.read() as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        shown = to_dict(ticket)["intake"]
    strict = hotline.settings.intake.low_confidence == 1.0
    assert shown["model_version"].startswith("default-")
    assert 0 < shown["department_confidence"] <= 1
    assert shown["departments_top3"][0]["department"] == "水务局"
    page = browser(app, "operator").get(f"/console/tickets/{tid}").get_data(as_text=True)
    if strict:
        assert "department" in shown["low_confidence"]
        assert "低置信度" in page
    else:
        assert shown["low_confidence"] == []
        assert "低置信度" not in page
