"""Working days on the official calendar, including 调休 make-up working days."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from ivr.workdays import WorkCalendar

cal = WorkCalendar()


def test_deadline_before_national_day_2024() -> None:
    # 2024-10-01..07 are holidays; Sunday 09-29 and Saturday 10-12 are make-up working days.
    start = date(2024, 9, 30)
    assert cal.add_workdays(start, 1) == date(2024, 10, 8)
    assert cal.add_workdays(start, 2) == date(2024, 10, 9)  # contact the caller by
    assert cal.add_workdays(start, 5) == date(2024, 10, 12)  # 咨询: lands on the 调休 Saturday
    assert cal.add_workdays(start, 15) == date(2024, 10, 25)


def test_deadline_spanning_a_make_up_saturday() -> None:
    # 2025 National Day: Sunday 09-28 and Saturday 10-11 are working days.
    assert cal.is_workday(date(2025, 9, 28))
    assert cal.add_workdays(date(2025, 9, 26), 1) == date(2025, 9, 28)
    assert cal.add_workdays(date(2025, 10, 10), 1) == date(2025, 10, 11)
    # Spring Festival 2025: 01-26 (Sunday) and 02-08 (Saturday) were make-up days.
    assert cal.add_workdays(date(2025, 1, 24), 1) == date(2025, 1, 26)


def test_zero_days_is_today_or_next_working_day() -> None:
    assert cal.add_workdays(date(2024, 10, 8), 0) == date(2024, 10, 8)
    assert cal.add_workdays(date(2024, 10, 3), 0) == date(2024, 10, 8)


def test_workdays_between() -> None:
    assert cal.workdays_between(date(2024, 9, 30), date(2024, 10, 12)) == 5
    assert cal.workdays_between(date(2024, 10, 12), date(2024, 9, 30)) == -5


def test_year_unknown_to_calendar_uses_weekdays_and_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = WorkCalendar(extra_holidays=[date(2099, 1, 1)], extra_workdays=[date(2099, 1, 3)])
    with caplog.at_level(logging.WARNING):
        assert not c.is_workday(date(2099, 1, 1))  # configured holiday (a Thursday)
        assert c.is_workday(date(2099, 1, 3))  # configured make-up Saturday
        assert c.is_workday(date(2099, 1, 2))
        assert not c.is_workday(date(2099, 1, 4))  # Sunday
    assert "2099" in caplog.text


def test_negative_days_refused() -> None:
    with pytest.raises(ValueError):
        cal.add_workdays(date(2024, 1, 1), -1)
