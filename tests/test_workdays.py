"""Working days on the official calendar, including 调休 make-up working days."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from ivr.holiday_rules import statutory_holidays
from ivr.workdays import Day, WorkCalendar

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


def test_year_unknown_to_calendar_uses_estimated_holidays_and_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # chinesecalendar knows no 2099: its statutory holidays are estimated, make-up
    # working days come only from config, and config wins over the estimate.
    c = WorkCalendar(
        extra_holidays=[date(2099, 1, 1), date(2099, 3, 2)],
        extra_workdays=[date(2099, 1, 3), date(2099, 1, 22)],
    )
    with caplog.at_level(logging.WARNING):
        assert not c.is_workday(date(2099, 1, 1))  # configured holiday (a Thursday)
        assert c.is_workday(date(2099, 1, 3))  # configured make-up Saturday
        assert c.is_workday(date(2099, 1, 2))
        assert not c.is_workday(date(2099, 1, 4))  # Sunday
    assert "2099" in caplog.text
    assert c.year_source(2099) == "estimated"
    assert c.day(date(2099, 1, 1)).source == "config"
    assert c.day(date(2099, 1, 2)).source == "estimated"
    # 春节 2099: 除夕 01-20 (Tuesday) and 初一..初三 01-21..23 are estimated holidays,
    # except where the office configured a working day (01-22).
    assert [c.is_workday(date(2099, 1, d)) for d in (20, 21, 22, 23, 26)] == [
        False,
        False,
        True,
        False,
        True,
    ]
    assert c.day(date(2099, 1, 21)) == Day(date(2099, 1, 21), False, "春节", "estimated")
    assert c.day(date(2099, 1, 22)) == Day(date(2099, 1, 22), True, "春节", "config")
    assert not c.is_workday(date(2099, 3, 2)) and c.is_statutory_holiday(date(2099, 3, 2))


def test_2027_is_estimated_from_the_holiday_rules() -> None:
    assert cal.year_source(2026) == "official" and cal.year_source(2027) == "estimated"
    holidays = {d.day: d.name for d in cal.special_days(2027)}
    assert holidays == {
        date(2027, 1, 1): "元旦",
        date(2027, 2, 5): "农历除夕",
        date(2027, 2, 6): "春节",
        date(2027, 2, 7): "春节",
        date(2027, 2, 8): "春节",
        date(2027, 4, 5): "清明节",
        date(2027, 5, 1): "劳动节",
        date(2027, 5, 2): "劳动节",
        date(2027, 6, 9): "端午节",
        date(2027, 9, 15): "中秋节",
        date(2027, 10, 1): "国庆节",
        date(2027, 10, 2): "国庆节",
        date(2027, 10, 3): "国庆节",
    }
    assert all(not d.workday and d.source == "estimated" for d in cal.special_days(2027))
    for day in holidays:
        assert cal.is_statutory_holiday(day) and not cal.is_workday(day)
    assert cal.is_workday(date(2027, 1, 4)) and cal.is_workday(date(2027, 2, 9))


def test_complaint_registered_2026_12_14_is_due_2027_01_05() -> None:
    # 投诉: 15 working days after Monday 2026-12-14. 12-15..18 (4), 12-21..25 (9),
    # 12-28..31 (13); 2027-01-01 (Friday) is 元旦; 01-04 (14), 01-05 (15).
    assert cal.add_workdays(date(2026, 12, 14), 15) == date(2027, 1, 5)
    assert cal.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 4)
    # Registered Thursday 02-04, the day before 除夕: 02-05..08 are the Spring Festival.
    assert cal.add_workdays(date(2027, 2, 4), 1) == date(2027, 2, 9)


@pytest.mark.parametrize("year", [2025, 2026])
def test_estimate_matches_the_official_notices_under_the_2025_rules(year: int) -> None:
    # The rules of the 2025 revision, computed, against the State Council's notices.
    estimated = statutory_holidays(year)
    assert len(estimated) == 13  # 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3
    for day, name in estimated:
        assert cal.day(day).source == "official"
        assert not cal.is_workday(day), (day, name)


def test_official_years_list_make_up_working_days() -> None:
    days = {d.day: d for d in cal.special_days(2026)}
    assert days[date(2026, 1, 4)] == Day(date(2026, 1, 4), True, "元旦", "official")
    assert days[date(2026, 1, 4)].is_make_up_workday
    assert days[date(2026, 2, 16)] == Day(date(2026, 2, 16), False, "春节", "official")
    assert all(d.workday == d.is_make_up_workday for d in days.values())


def test_coverage_warning_from_the_first_of_december() -> None:
    assert cal.coverage_warning(date(2026, 11, 30)) is None
    for today in (date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 31)):
        warning = cal.coverage_warning(today)
        assert warning is not None and "2027" in warning and "estimated" in warning
    assert "2027" in (cal.coverage_warning(date(2027, 3, 1)) or "")  # in the year itself


def test_negative_days_refused() -> None:
    with pytest.raises(ValueError):
        cal.add_workdays(date(2024, 1, 1), -1)
