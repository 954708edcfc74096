"""`ivr calendar show` and the calendar line of `ivr check`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ivr.cli import main

from .conftest import ROOT
from .test_config import write_config


def ivr(*args: str, config: Path = ROOT / "config.yaml"):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_show_2027_lists_the_estimated_holidays() -> None:
    r = ivr("calendar", "show", "2027")
    assert r.exit_code == 0, r.output
    assert "2027: estimated" in r.output and "calendar.extra_workdays" in r.output
    for line in (
        "2027-01-01 周五 休 estimated 元旦",
        "2027-02-05 周五 休 estimated 农历除夕",
        "2027-02-06 周六 休 estimated 春节",
        "2027-02-07 周日 休 estimated 春节",
        "2027-02-08 周一 休 estimated 春节",
        "2027-10-03 周日 休 estimated 国庆节",
    ):
        assert line in r.output
    assert " 班 " not in r.output  # no make-up working day can be estimated


def test_show_json_with_config_corrections(tmp_path: Path) -> None:
    def notice(d: dict) -> None:  # type: ignore[type-arg]
        d["calendar"] = {"extra_holidays": ["2027-02-09"], "extra_workdays": ["2027-02-20"]}

    r = ivr("calendar", "show", "2027", "--json", config=write_config(tmp_path, notice))
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["year"] == 2027 and body["source"] == "estimated"
    days = {d["date"]: d for d in body["days"]}
    assert days["2027-02-08"] == {
        "date": "2027-02-08",
        "weekday": "周一",
        "kind": "holiday",
        "name": "春节",
        "source": "estimated",
    }
    assert (days["2027-02-09"]["kind"], days["2027-02-09"]["source"]) == ("holiday", "config")
    assert (days["2027-02-20"]["kind"], days["2027-02-20"]["source"]) == ("workday", "config")
    assert sorted(days) == list(days)


def test_show_official_year_has_make_up_working_days() -> None:
    r = ivr("calendar", "show", "2026")
    assert r.exit_code == 0 and "2026: official" in r.output
    assert "2026-01-04 周日 班 official  元旦" in r.output
    assert "2026-10-01 周四 休 official  国庆节" in r.output


def test_check_warns_from_december_when_next_year_is_estimated() -> None:
    r = ivr("check", "--at", "2026-12-02")
    assert r.exit_code == 0, r.output
    assert "warning: calendar:" in r.output and "2027" in r.output
    r = ivr("check", "--at", "2026-11-30T10:00")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output and "calendar ok: official for 2026" in r.output


def test_check_refuses_a_bad_time() -> None:
    r = ivr("check", "--at", "yesterday")
    assert r.exit_code == 2 and "--at 'yesterday'" in r.output
