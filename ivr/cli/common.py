"""What every `ivr` command group shares: the context, failing with a message, ticket text."""

from __future__ import annotations

import logging
import sys
from datetime import date, datetime
from typing import Any, NoReturn

import click

from ivr.clock import Clock, FixedClock, SystemClock
from ivr.config import ConfigError, Settings, load_config
from ivr.flow import FlowError
from ivr.store import SchemaNotReady

log = logging.getLogger("ivr.cli")


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Ctx:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self.clock: Clock = SystemClock()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_config(self.config_path)
            except ConfigError as exc:
                fail(str(exc))
        return self._settings

    def hotline(self) -> Any:
        from ivr.app import Hotline

        try:
            return Hotline.open(self.settings, self.clock)
        except (SchemaNotReady, FlowError) as exc:
            fail(str(exc))

    def set_time(self, at: str) -> None:
        """Run as if it were `at` (ISO local time in the configured zone, e.g. 2026-12-14T10:00)."""
        self.clock = FixedClock(self.local_time(at, "--at"))

    def local_time(self, text: str, option: str) -> datetime:
        """An ISO time given on the command line; local (the configured zone) if it names none."""
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            fail(f"{option} {text!r}: give a local time such as 2026-12-14T10:00")
        return when.replace(tzinfo=self.settings.tz) if when.tzinfo is None else when

    def today(self) -> date:
        return self.clock.now().astimezone(self.settings.tz).date()


pass_ctx = click.make_pass_decorator(Ctx)


def ticket_text(t: dict[str, Any]) -> str:
    addr = (t.get("address") or {}).get("text") or "-"
    scope = t.get("scope")
    lines = [
        f"工单 {t['number']}  [{t['status']}]  line {t['line']}  caller {t['caller']}",
        f"  category   {t['category']} ({t['category_source']})",
        f"  department {t['department']} ({t['department_source']})",
        f"  urgent     {'yes ' + ','.join(t['urgency_keywords']) if t['urgent'] else 'no'}",
        f"  address    {addr}",
        f"  contact by {t['contact_due']}   due {t['due_date']}"
        + (f"   contacted {t['first_contact_at']}" if t.get("first_contact_at") else ""),
        f"  statement  {t['statement'] or '(none)'}",
        f"  transcription {t['transcription']}",
    ]
    if scope:
        lines.append(f"  scope      {scope['kind']}: {scope['rule']} — {scope['advice']}")
    if t.get("duplicate_of"):
        lines.append(f"  duplicate of {t['duplicate_of']}")
    if t.get("result_note"):
        lines.append(f"  result     {t['result_note']}")
    if t.get("survey_outcome"):
        solved = {"resolved": "已解决", "unresolved": "未解决"}.get(t.get("survey_resolved") or "")
        lines.append(
            f"  survey     {t['survey_outcome']} (round {t['survey_round']})"
            + (f" {solved}" if solved else "")
        )
    return "\n".join(lines)
