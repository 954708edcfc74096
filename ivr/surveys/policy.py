"""When a survey call may be placed: windows, days, deadline, retries, pacing.

Pure functions of the configuration, the official calendar and a time; the
dispatcher and the dial job ask them and never decide on their own.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.config import SurveyConfig
from ivr.workdays import WorkCalendar

RETRYABLE = {"busy", "no-answer", "machine", "failed", "unreachable", "interrupted"}


class CallPolicy:
    def __init__(self, cfg: SurveyConfig, calendar: WorkCalendar, tz: ZoneInfo) -> None:
        self.cfg, self.calendar, self.tz = cfg, calendar, tz
        self.windows = cfg.window_bounds()

    def is_call_day(self, day: date) -> bool:
        if self.calendar.is_workday(day):
            return True
        return (
            self.cfg.call_on_weekends
            and day.weekday() >= 5
            and not self.calendar.is_statutory_holiday(day)
        )

    def may_call(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        if not self.is_call_day(local.date()):
            return False
        t = local.time()
        return any(start <= t < end for start, end in self.windows)

    def next_allowed(self, at: datetime) -> datetime:
        """The earliest moment at or after `at` inside a calling window on a calling day."""
        local = at.astimezone(self.tz)
        day = local.date()
        for _ in range(400):
            if self.is_call_day(day):
                for start, end in self.windows:
                    open_at = datetime.combine(day, start, self.tz)
                    close_at = datetime.combine(day, end, self.tz)
                    if local < close_at:
                        return max(local, open_at).astimezone(UTC)
            day += timedelta(days=1)
            local = datetime.combine(day, self.windows[0][0], self.tz)
        raise RuntimeError("no calling day within 400 days: check surveys.windows and calendar")

    def deadline(self, completed_at: datetime) -> datetime:
        """End of the last calling window on the deadline day (N working days after 办结)."""
        done = completed_at.astimezone(self.tz).date()
        last_day = self.calendar.add_workdays(done, self.cfg.deadline_workdays)
        return datetime.combine(last_day, self.windows[-1][1], self.tz).astimezone(UTC)

    def retry_at(self, finished_at: datetime) -> datetime:
        return self.next_allowed(finished_at + timedelta(minutes=self.cfg.retry_after_minutes))

    def next_day(self, at: datetime) -> datetime:
        """The first calling moment of a later day (one survey call per number per day)."""
        local = at.astimezone(self.tz)
        tomorrow = datetime.combine(local.date() + timedelta(days=1), self.windows[0][0], self.tz)
        return self.next_allowed(tomorrow)

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()


class Pacer:
    """Call starts at least 1/rate seconds apart: no second sees more starts than the rate.

    Callers queue on one gate and the gap is measured from the previous caller's
    actual start (after its sleep), so oversleeping never bunches two starts; the
    spacing is a microsecond over 1/rate so rounding cannot fit rate+1 starts
    into one second.
    """

    def __init__(
        self,
        rate: float,
        monotonic: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        self.spacing = 1.0 / rate + 1e-6
        self._monotonic, self._sleep = monotonic, sleep
        self._last: float | None = None
        self._gate = threading.Lock()

    def acquire(self) -> float:
        """Block until this caller may start; returns its start time (monotonic seconds)."""
        with self._gate:
            now = self._monotonic()
            if self._last is not None and now < self._last + self.spacing:
                self._sleep(self._last + self.spacing - now)
                now = self._monotonic()
            self._last = now
            return now
