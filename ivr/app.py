"""The application context shared by the CLI, the transports and the web app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING

from ivr.clock import Clock, SystemClock
from ivr.config import Settings
from ivr.flow import Flow
from ivr.flow.configured import load_flows
from ivr.store import Database
from ivr.workdays import WorkCalendar

if TYPE_CHECKING:
    from ivr.calls.service import CallService


@dataclass
class Hotline:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def open(
        cls, settings: Settings, clock: Clock | None = None, *, check_schema: bool = True
    ) -> Hotline:
        db = Database(settings.resolved_database_url)
        if check_schema:
            db.check_schema()
        app = cls(settings, db, clock or SystemClock())
        _ = app.flows  # validate flows at start, not at the first call
        return app

    @cached_property
    def calendar(self) -> WorkCalendar:
        return WorkCalendar.from_config(self.settings.calendar)

    @cached_property
    def flows(self) -> dict[str, Flow]:
        return load_flows(self.settings)

    @cached_property
    def calls(self) -> CallService:
        from ivr.calls.service import CallService

        return CallService(self)

    def today(self) -> date:
        return self.clock.now().astimezone(self.settings.tz).date()

    def close(self) -> None:
        self.db.dispose()
