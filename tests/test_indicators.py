"""考核指标: `ivr report indicators` against a fixture whose rates are worked out by hand
below, the effect of a manual callback, the CSV/Excel outputs, the console and the API.

The clock says Monday 2026-11-23 10:00 in Shanghai (`today` 2026-11-23). Times below are
Shanghai local; T2, T6 and T8 sit a few hours from midnight, on the other side of the
UTC date, so a report that bucketed UTC days would put them in the wrong period.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from openpyxl import load_workbook

import ivr.reports.indicators as indicators_module
from ivr.app import Hotline
from ivr.cli import main
from ivr.reports.indicators import IndicatorRow, indicators
from ivr.services.callbacks import record_callback
from ivr.store.models import KbArticle, Ticket

from .consolekit import SETUP, browser, console_app

A, B = "市场监管局", "住建局"
SHANGHAI = timedelta(hours=8)


def local(day: str, hm: str = "10:00") -> datetime:
    """A Shanghai local time as the aware UTC datetime the database keeps."""
    return datetime.fromisoformat(f"{day} {hm}").replace(tzinfo=UTC) - SHANGHAI


def d(day: str) -> date:
    return date.fromisoformat(day)


# name: department, category, status, created, contact_due, first contact, due, completed,
# survey score, solved answer, rehandle_count, answered from the knowledge base
FIXTURE: dict[str, dict[str, Any]] = {
    # received Nov 2, contacted Nov 3 (in time), completed Nov 5 (in time), 满意 + 已解决
    "T1": dict(dept=A, cat="投诉", status="surveyed", created=local("2026-11-02"),
               contact_due="2026-11-04", contact=local("2026-11-03"), due="2026-11-10",
               completed=local("2026-11-05"), score="satisfied", solved="resolved"),
    # received Nov 1 00:30 (Oct 31 UTC), contacted late, completed Nov 12 after its Nov 10
    # deadline, 不满意 + 未解决 (waiting for review)
    "T2": dict(dept=A, cat="投诉", status="review", created=local("2026-11-01", "00:30"),
               contact_due="2026-11-03", contact=local("2026-11-04"), due="2026-11-10",
               completed=local("2026-11-12"), score="unsatisfied", solved="unresolved"),
    # a consultation answered on the spot from the knowledge base (直办), not surveyed
    "T3": dict(dept=A, cat="咨询", status="completed", created=local("2026-11-03"),
               contact_due="2026-11-05", due="2026-11-17", completed=local("2026-11-03"),
               kb=True),
    # open, its deadline (Nov 20) and contact deadline (Nov 18) passed, nobody called
    "T4": dict(dept=A, cat="投诉", status="registered", created=local("2026-11-16"),
               contact_due="2026-11-18", due="2026-11-20"),
    # open, neither deadline passed yet
    "T5": dict(dept=A, cat="投诉", status="registered", created=local("2026-11-20"),
               contact_due="2026-11-24", due="2026-11-27"),
    # extended from Nov 16 to Nov 27 (due_date is the extended one), completed Nov 20
    "T11": dict(dept=A, cat="投诉", status="completed", created=local("2026-11-09"),
                contact_due="2026-11-11", contact=local("2026-11-10"), due="2026-11-27",
                completed=local("2026-11-20")),
    # received Oct 31 23:30 (October), completed Nov 6 in time, 基本满意 + 已解决
    "T6": dict(dept=B, cat="投诉", status="surveyed", created=local("2026-10-31", "23:30"),
               contact_due="2026-11-04", due="2026-11-09", completed=local("2026-11-06"),
               score="basically_satisfied", solved="resolved"),
    # 不满意 confirmed: re-handling (open again), its first completion Nov 9 kept,
    # deadline Nov 18 passed; contacted Nov 6 12:00, its contact deadline's day
    "T7": dict(dept=B, cat="建议", status="rehandle", created=local("2026-11-04"),
               contact_due="2026-11-06", contact=local("2026-11-06", "12:00"),
               due="2026-11-18", completed=local("2026-11-09"), score="unsatisfied",
               solved="unresolved", rehandle=1),
    # re-handled once, completed again Nov 20 00:30 (Nov 19 UTC) a day after its Nov 19
    # deadline, surveyed again: 满意 (the solved question not asked); never contacted
    "T8": dict(dept=B, cat="投诉", status="surveyed", created=local("2026-11-05"),
               contact_due="2026-11-09", due="2026-11-19",
               completed=local("2026-11-20", "00:30"), score="satisfied", rehandle=1),
    # a draft and a 不予受理: not accepted, in no indicator
    "T9": dict(dept=B, cat="投诉", status="draft", created=local("2026-11-10"),
               contact_due="2026-11-12", due="2026-11-17"),
    "T10": dict(dept=B, cat="投诉", status="rejected", created=local("2026-11-11"),
                contact_due="2026-11-13", due="2026-11-18"),
}  # fmt: skip


def seed(hotline: Hotline) -> dict[str, int]:
    ids = {}
    with hotline.db.session() as s:
        now = hotline.clock.now()
        article = KbArticle(title="社保卡补办", body="带身份证到任一网点", created_at=now,
                            updated_at=now)  # fmt: skip
        s.add(article)
        s.flush()
        for n, (name, f) in enumerate(FIXTURE.items(), start=1):
            t = Ticket(
                number=f"12345-20261101-{n:05d}",
                status=f["status"],
                line_number="12345" if f["dept"] == A else "12315",
                caller_number="13800138000",
                category=f["cat"],
                category_source="model",
                department=f["dept"],
                department_source="model",
                contact_due=d(f["contact_due"]),
                due_date=d(f["due"]),
                first_contact_at=f.get("contact"),
                completed_at=f.get("completed"),
                survey_outcome=f.get("score"),
                survey_resolved=f.get("solved"),
                rehandle_count=f.get("rehandle", 0),
                survey_round=1 + f.get("rehandle", 0),
                kb_article_id=article.id if f.get("kb") else None,
                created_at=f["created"],
                updated_at=f["created"],
            )
            s.add(t)
            s.flush()
            ids[name] = t.id
    return ids


def rates(row: IndicatorRow) -> dict[str, tuple[int, int]]:
    names = ("satisfaction", "resolution", "on_time", "overdue", "rehandle", "contact", "direct")
    return {n: (getattr(row, n).numerator, getattr(row, n).denominator) for n in names}


# November 2026 by department, worked out from FIXTURE:
# A received (created in Nov, accepted): T1 T2 T3 T4 T5 T11 = 6; 直办 T3 -> 1/6.
#   及时联系 (not 直办; contacted, or contact deadline before Nov 23): T1 T2 T4 T11 = 4
#   (T5's deadline is Nov 24), in time T1 T11 -> 2/4.
#   completed in Nov: T1 T2 T3 T11 = 4; scored T1 满意, T2 不满意 -> 1/2; solved 1/2;
#   re-handled 0/4. due in Nov: T1 T2 T3 T4 T5 T11 = 6; in time T1 T3 T11 -> 3/6;
#   overdue T2 (late) T4 (open past due) -> 2/6.
# B received: T7 T8 = 2 (T6 is October's, T9 a draft, T10 rejected); 直办 0/2;
#   contact T7 (in time) T8 (deadline passed) -> 1/2.
#   completed: T6 T7 T8 = 3; scored 基本满意, 不满意, 满意 -> 2/3; solved T6 yes, T7 no
#   -> 1/2; re-handled T7 T8 -> 2/3. due: T6 T7 T8 = 3; in time T6 -> 1/3;
#   overdue T7 (open) T8 (a day late) -> 2/3.
NOVEMBER = {
    A: dict(received=6, completed=4, due=6, satisfaction=(1, 2), resolution=(1, 2),
            on_time=(3, 6), overdue=(2, 6), rehandle=(0, 4), contact=(2, 4), direct=(1, 6)),
    B: dict(received=2, completed=3, due=3, satisfaction=(2, 3), resolution=(1, 2),
            on_time=(1, 3), overdue=(2, 3), rehandle=(2, 3), contact=(1, 2), direct=(0, 2)),
}  # fmt: skip


@pytest.fixture
def seeded(hotline: Hotline) -> dict[str, int]:
    return seed(hotline)


def by_group(rows: list[IndicatorRow]) -> dict[str, IndicatorRow]:
    return {r.group: r for r in rows}


def test_indicators_agree_with_the_hand_computed_fixture(
    hotline: Hotline, seeded: dict[str, int]
) -> None:
    rows = by_group(indicators(hotline, d("2026-11-01"), d("2026-11-30"), "department", "month"))
    assert set(rows) == {A, B}
    for dept, expected in NOVEMBER.items():
        row = rows[dept]
        assert (row.period, row.start, row.end) == ("2026-11", d("2026-11-01"), d("2026-11-30"))
        assert (row.received, row.completed, row.due) == (
            expected["received"],
            expected["completed"],
            expected["due"],
        )
        assert rates(row) == {k: v for k, v in expected.items() if isinstance(v, tuple)}
    assert rows[A].satisfaction.rate == 0.5 and rows[B].rehandle.rate == pytest.approx(2 / 3)


def test_counted_in_id_ranges_the_figures_are_the_same(
    hotline: Hotline, seeded: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large SQLite table is counted in id ranges on several connections at once.
    def report() -> list[dict[str, object]]:
        rows = []
        for by in ("department", "line", "all"):
            for period in ("week", "month", "quarter"):
                found = indicators(hotline, d("2026-10-01"), d("2026-12-31"), by, period)
                rows += [r.as_dict() for r in found]
        return rows

    whole = report()
    monkeypatch.setattr(indicators_module, "SQLITE_PART_MIN", 0)
    monkeypatch.setattr(indicators_module.os, "cpu_count", lambda: 3)
    assert report() == whole and whole


def test_weeks_and_quarters_are_local(hotline: Hotline, seeded: dict[str, int]) -> None:
    weeks = {
        r.period: r for r in indicators(hotline, d("2026-11-01"), d("2026-11-30"), "all", "week")
    }
    # T2 came in on Sunday Nov 1 (local): ISO week 44, which began on Monday Oct 26.
    assert (weeks["2026-W44"].start, weeks["2026-W44"].received) == (d("2026-10-26"), 1)
    # Nov 2-8: T1 T3 T7 T8 received; T1 T3 T6 completed; T6 due Nov 9 is week 46's.
    w45 = weeks["2026-W45"]
    assert (w45.received, w45.completed, w45.due) == (4, 3, 0)
    # Nov 16-22: T4 T5 received; T11 and T8 (Nov 20 00:30 local) completed; T3 T4 T7 T8
    # due, T3 in time, T8 late and T4 T7 open past due.
    w47 = weeks["2026-W47"]
    assert (w47.received, w47.completed, w47.overdue.numerator, w47.due) == (2, 2, 3, 4)
    assert w47.on_time.numerator == 1
    quarters = indicators(hotline, d("2026-10-01"), d("2026-12-31"), "line", "quarter")
    line = by_group(quarters)
    # T6 (12315) was received on Oct 31: in the quarter, with the rest of its line.
    assert line["12315"].period == "2026-Q4" and line["12315"].received == 3
    assert line["12345"].received == 6 and line["12345"].direct.rate == pytest.approx(1 / 6)


def test_a_manual_callback_changes_the_indicators(hotline: Hotline, seeded: dict[str, int]) -> None:
    def a_row() -> IndicatorRow:
        rows = indicators(hotline, d("2026-11-01"), d("2026-11-30"), "department", "month")
        return by_group(rows)[A]

    assert (a_row().satisfaction.numerator, a_row().satisfaction.denominator) == (1, 2)
    # T11 (completed Nov 20, not yet surveyed) is called back by hand: 满意, 已解决.
    record_callback(hotline, SETUP, seeded["T11"], "satisfied", "resolved", "电话回访")
    # T5 (open; contact deadline Nov 24) is reached today: contacted in time.
    record_callback(hotline, SETUP, seeded["T5"], "unreached", None, "无人接听")
    row = a_row()
    assert rates(row)["satisfaction"] == (2, 3) and rates(row)["resolution"] == (2, 3)
    assert rates(row)["contact"] == (2, 4)  # nobody reached on T5: unchanged
    record_callback(hotline, SETUP, seeded["T5"], "basically_satisfied", None, "已联系")
    assert rates(a_row())["contact"] == (3, 5)


def run_cli(hotline: Hotline, *args: str) -> Any:
    env = {"DATABASE_URL": hotline.settings.resolved_database_url}
    return CliRunner().invoke(
        main, ["report", *args, "--at", "2026-11-23T10:00"], env=env, catch_exceptions=False
    )


def test_cli_table_csv_and_xlsx(hotline: Hotline, seeded: dict[str, int], tmp_path: Path) -> None:
    r = run_cli(hotline, "indicators", "--from", "2026-11-01", "--to", "2026-11-30",
                "--by", "department", "--period", "month")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "市场监管局" in r.output and "50.0%" in r.output
    out = tmp_path / "ind.csv"
    r = run_cli(hotline, "indicators", "--from", "2026-11-01", "--to", "2026-11-30",
                "--by", "department", "--period", "month", "--csv", str(out))  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    header = rows[0]
    b = next(row for row in rows if row[0] == B)
    assert b[header.index("重办率")] == "0.6667"
    assert (b[header.index("重办率分子")], b[header.index("重办率分母")]) == ("2", "3")
    xlsx = tmp_path / "ind.xlsx"
    r = run_cli(hotline, "indicators", "--from", "2026-11-01", "--to", "2026-11-30",
                "--by", "line", "--period", "week", "--xlsx", str(xlsx))  # fmt: skip
    assert r.exit_code == 0, r.output
    ws = load_workbook(xlsx).worksheets[0]
    values = list(ws.values)
    assert values[0][:2] == ("分组", "周期") and ("12345", "2026-W45") in [v[:2] for v in values]
    assert ws._charts  # a native Excel chart


def test_monthly_workbook(hotline: Hotline, seeded: dict[str, int], tmp_path: Path) -> None:
    out = tmp_path / "monthly.xlsx"
    r = run_cli(hotline, "monthly", "--month", "2026-11", "--xlsx", str(out))
    assert r.exit_code == 0, r.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["全部", "部门", "热线", "类别", "近12个月趋势"]
    dept = list(wb["部门"].values)
    assert {row[0] for row in dept[1:] if row[0]} >= {A, B}
    trend = [row for row in wb["近12个月趋势"].values]
    assert [row[0] for row in trend[1:13]][-1] == "2026-11" and len(trend[1:13]) == 12
    assert all(wb[name]._charts for name in wb.sheetnames)


@pytest.fixture
def console(hotline: Hotline) -> Iterator[Flask]:
    with console_app(hotline) as app:
        yield app


def test_console_indicators_for_supervisors_only(
    console: Flask, hotline: Hotline, seeded: dict[str, int]
) -> None:
    sup = browser(console, "supervisor")
    page = sup.get(
        "/console/reports/indicators?from=2026-11-01&to=2026-11-30&by=department&period=month"
    ).get_data(as_text=True)
    assert "考核指标" in page and "市场监管局" in page and "66.7%" in page
    workbook = sup.get("/console/reports/monthly.xlsx?month=2026-11")
    assert workbook.status_code == 200
    assert load_workbook(io.BytesIO(workbook.data)).sheetnames[0] == "全部"
    operator = browser(console, "operator")
    assert operator.get("/console/reports/indicators").status_code == 403
    assert operator.get("/console/reports/monthly.xlsx?month=2026-11").status_code == 403


def test_api_indicators(console: Flask, hotline: Hotline, seeded: dict[str, int]) -> None:
    from ivr.services.accounts import issue_token

    token = issue_token(hotline, SETUP, "supervisor", "platform")
    client = console.test_client()
    r = client.get(
        "/api/reports/indicators?from=2026-11-01&to=2026-11-30&by=department&period=month",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["by"] == "department" and body["period"] == "month"
    b = next(row for row in body["rows"] if row["group"] == B)
    assert b["overdue"] == {"numerator": 2, "denominator": 3, "rate": pytest.approx(2 / 3)}
    op = issue_token(hotline, SETUP, "operator", "op-platform")
    denied = client.get(
        "/api/reports/indicators?from=2026-11-01&to=2026-11-30",
        headers={"Authorization": f"Bearer {op}"},
    )
    assert denied.status_code == 403
    bad = client.get(
        "/api/reports/indicators?from=2026-11-30&to=2026-11-01",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bad.status_code == 200 and bad.get_json()["rows"] == []
    bad = client.get(
        "/api/reports/indicators?period=fortnight", headers={"Authorization": f"Bearer {token}"}
    )
    assert bad.status_code == 400
