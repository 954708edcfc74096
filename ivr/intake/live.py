"""Checks on a statement while the caller is still speaking (the live recognizer's text)."""

from __future__ import annotations

from ivr.config import Settings
from ivr.intake.analyze import ScopeFlag, analyze


def emergency_in(settings: Settings, text: str) -> ScopeFlag | None:
    """The emergency scope rule the text so far matches, by the same rules as the draft."""
    if not text.strip():
        return None
    line = settings.line(settings.hotline)
    assert line is not None
    scope = analyze(settings, text, line=line).scope
    return scope if scope is not None and scope.kind == "emergency" else None


def warm_up(settings: Settings) -> None:
    """Load what the analysis loads on first use, so the first live check is quick."""
    emergency_in(settings, "你好")
