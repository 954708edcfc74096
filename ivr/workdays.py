"""Working-day arithmetic on the Chinese calendar (holidays and 调休 make-up days).

Each day's status has a source:
- official: chinesecalendar, which ships the State Council notices up to the year
  it was released (holidays and 调休 make-up working days);
- estimated: for a year chinesecalendar does not know, the statutory holidays of
  the national holiday rules in force that year, computed with the lunar calendar
  of the `holidays` package (ivr.holiday_rules). The 调休 make-up working days are
  set by each year's State Council notice and cannot be computed: an estimated
  year has none until the office adds them;
- config: calendar.extra_holidays / extra_workdays in config.yaml, which win over both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import chinese_calendar

from ivr.config import CalendarConfig
from ivr.holiday_rules import statutory_holidays

log = logging.getLogger(__name__)

Source = Literal["official", "estimated", "config"]

_CHINESE_NAMES = {h.value: h.chinese for h in chinese_calendar.Holiday}


@dataclass(frozen=True)
class Day:
    day: date
    workday: bool
    name: str | None  # the holiday a day off or a 调休 working day belongs to
    source: Source

    @property
    def is_make_up_workday(self) -> bool:
        return self.workday and self.day.weekday() >= 5


def _official_year(year: int) -> dict[date, Day] | None:
    """Days whose status the State Council notice sets; None if chinesecalendar lacks the year."""
    first = date(year, 1, 1)
    try:
        chinese_calendar.get_holiday_detail(first)
    except NotImplementedError:
        return None
    out = {}
    for i in range((date(year + 1, 1, 1) - first).days):
        day = first + timedelta(days=i)
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if name:
            out[day] = Day(day, not on_holiday, _CHINESE_NAMES.get(name, name), "official")
    return out


def _estimated_year(year: int) -> dict[date, Day]:
    return {day: Day(day, False, name, "estimated") for day, name in statutory_holidays(year)}


class WorkCalendar:
    def __init__(
        self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()
    ) -> None:
        self._holidays = frozenset(extra_holidays)
        self._workdays = frozenset(extra_workdays)
        self._years: dict[int, tuple[Source, dict[date, Day]]] = {}

    @classmethod
    def from_config(cls, cfg: CalendarConfig) -> WorkCalendar:
        return cls(cfg.extra_holidays, cfg.extra_workdays)

    def _year(self, year: int) -> tuple[Source, dict[date, Day]]:
        known = self._years.get(year)
        if known is not None:
            return known
        official = _official_year(year)
        source: Source = "official" if official is not None else "estimated"
        days = official if official is not None else _estimated_year(year)
        if official is None:
            log.warning(
                "official calendar for %d unknown to chinesecalendar %s; using estimated "
                "statutory holidays (no 调休 make-up working days) plus calendar.extra_* "
                "from config",
                year,
                getattr(chinese_calendar, "__version__", "?"),
            )
        for day in (d for d in self._holidays | self._workdays if d.year == year):
            base = days.get(day)
            # A day in both lists stays a holiday, as before the estimates existed.
            workday = day not in self._holidays
            days[day] = Day(day, workday, base.name if base else None, "config")
        self._years[year] = (source, days)
        return source, days

    def year_source(self, year: int) -> Source:
        """official if chinesecalendar has the year's State Council notice, else estimated."""
        return self._year(year)[0]

    def day(self, day: date) -> Day:
        source, days = self._year(day.year)
        return days.get(day) or Day(day, day.weekday() < 5, None, source)

    def special_days(self, year: int) -> list[Day]:
        """Every holiday and 调休 working day of the year, with config's corrections."""
        return sorted(self._year(year)[1].values(), key=lambda d: d.day)

    def is_workday(self, day: date) -> bool:
        return self.day(day).workday

    def is_statutory_holiday(self, day: date) -> bool:
        """A public holiday (not merely a weekend), official, estimated or configured."""
        info = self.day(day)
        return not info.workday and (info.name is not None or info.source == "config")

    def coverage_warning(self, today: date) -> str | None:
        """A warning when this year, or from 1 December next year, is only estimated."""
        years = [today.year, today.year + 1] if today.month == 12 else [today.year]
        estimated = [y for y in years if self.year_source(y) == "estimated"]
        if not estimated:
            return None
        which = " and ".join(str(y) for y in estimated)
        return (
            f"chinesecalendar {getattr(chinese_calendar, '__version__', '?')} has no State "
            f"Council holiday notice for {which}: its holidays are estimated and it has no 调休 "
            "make-up working days; upgrade chinesecalendar, or add the notice's days to "
            "calendar.extra_holidays / extra_workdays in config.yaml"
        )

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
