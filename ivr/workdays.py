"""Working-day arithmetic on the official Chinese calendar (holidays and 调休 make-up days).

chinesecalendar ships the State Council notices up to the year it was released;
for other years the calendar falls back to Monday-Friday plus the corrections
in config.yaml (calendar.extra_holidays / extra_workdays), and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta

import chinese_calendar

log = logging.getLogger(__name__)


class WorkCalendar:
    def __init__(
        self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()
    ) -> None:
        self._holidays = frozenset(extra_holidays)
        self._workdays = frozenset(extra_workdays)
        self._warned: set[int] = set()

    def is_workday(self, day: date) -> bool:
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned:
                self._warned.add(day.year)
                log.warning(
                    "official calendar for %d unknown to chinesecalendar %s; using weekdays "
                    "plus calendar.extra_* from config",
                    day.year,
                    getattr(chinese_calendar, "__version__", "?"),
                )
            return day.weekday() < 5

    def is_statutory_holiday(self, day: date) -> bool:
        """A public holiday (not merely a weekend)."""
        if day in self._holidays:
            return True
        if day in self._workdays:
            return False
        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:
            return False  # unknown year: only config's extra_holidays (checked above)
        return bool(on_holiday and name)

    def add_workdays(self, start: date, n: int) -> date:
        """The n-th working day after `start` (n=0: `start` itself, or the next working day)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        day = start
        if n == 0:
            while not self.is_workday(day):
                day += timedelta(days=1)
            return day
        while n:
            day += timedelta(days=1)
            if self.is_workday(day):
                n -= 1
        return day

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            return -self.workdays_between(end, start)
        return sum(
            1 for i in range(1, (end - start).days + 1) if self.is_workday(start + timedelta(i))
        )
