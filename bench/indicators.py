"""Benchmark: the indicators report (考核指标) over 1,000,000 tickets on SQLite and
PostgreSQL, each grouping (all, department, line, category) by week, month and quarter
over twelve months; median of 3 runs each (goal: each under 2 s).

    .venv/bin/python -m bench.indicators [--tickets 1000000] [--db sqlite,postgres]

Tickets: received evenly over Dec 2025 - Nov 2026 (local days), 30 departments, 9 lines,
5 categories; about 7% not accepted (draft, 不予受理, 重复件), 90% of the rest completed
(60% of those surveyed: 70% 满意, 18% 基本满意, 12% 不满意; the solved question answered
by 80%), 4% re-handled, 8% extended (+7 days), 35% contacted (80% of them in time), 30%
of consultations answered from the knowledge base. Written with executemany in batches
(SQLite) or COPY (PostgreSQL, a throwaway database) and analyzed; the report reads
only `tickets`, so survey attempts and lifecycle rows are not generated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.pg import fresh_postgres
from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import load_config
from ivr.reports.indicators import GROUPINGS, PERIODS, indicators
from ivr.store import upgrade

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FIRST, LAST = date(2025, 12, 1), date(2026, 11, 30)
TODAY = date(2026, 12, 1)
CATEGORIES = ("投诉", "咨询", "求助", "建议", "举报")
LINES = ("12345", "12315", "12319", "12320", "12328", "12333", "12336", "12338", "12358")
DEPARTMENTS = tuple(f"部门{i:02d}" for i in range(1, 31))
ARTICLES = 50
# Rows as wide as real ones: a caller's statement of about 40 characters.
STATEMENTS = tuple(
    f"我要反映{place}的问题，已经持续了一段时间，希望有关部门尽快处理，谢谢。"
    for place in (
        "小区噪音",
        "道路积水",
        "物业收费",
        "食品安全",
        "社保补缴",
        "公交线路",
        "违章停车",
    )
)
COLUMNS = (
    "number", "status", "line_number", "caller_number", "category", "category_source",
    "department", "department_source", "urgent", "urgency_keywords", "statement", "summary",
    "phone_numbers", "out_of_scope", "transcription", "contact_due", "due_date",
    "first_contact_at", "completed_at", "survey_outcome", "survey_resolved", "survey_round",
    "rehandle_count", "kb_article_id", "no_callback", "change_seq", "created_at", "updated_at",
)  # fmt: skip
SHANGHAI = timedelta(hours=8)


def tickets(n: int, seed: int = 16) -> Iterator[tuple[Any, ...]]:
    """The benchmark's tickets as COLUMNS tuples (datetimes aware UTC)."""
    rng = random.Random(seed)
    span = (LAST - FIRST).days + 1
    r = rng.random
    for i in range(n):
        local = datetime.combine(FIRST, datetime.min.time()) + timedelta(seconds=r() * span * 86400)
        created = (local - SHANGHAI).replace(tzinfo=UTC)
        day = local.date()
        category = CATEGORIES[int(r() * 5)]
        contact_due = day + timedelta(days=2)
        due = day + timedelta(days=10 if category != "咨询" else 5)
        if r() < 0.08:
            due += timedelta(days=7)  # 延期
        status, completed, score, solved, rehandle, kb = "registered", None, None, None, 0, None
        x = r()
        if x < 0.02:
            status = "draft"
        elif x < 0.04:
            status = "rejected"
        elif x < 0.07:
            status = "duplicate"
        elif r() < 0.9:
            completed = created + timedelta(seconds=r() * 14 * 86400)
            if category == "咨询" and r() < 0.3:
                kb, completed = 1 + int(r() * ARTICLES), created + timedelta(minutes=5)
            status = "completed"
            if r() < 0.6:
                y = r()
                score = "satisfied" if y < 0.7 else "basically_satisfied" if y < 0.88 else None
                status = "surveyed"
                if score is None:
                    score, status = "unsatisfied", "review" if r() < 0.5 else "surveyed"
                solved = None if r() < 0.2 else "resolved" if r() < 0.75 else "unresolved"
            if r() < 0.04:
                rehandle = 1
                if r() < 0.3:
                    status = "rehandle"
        elif r() < 0.1:
            status = "returned"
        contact = None
        if status not in ("draft", "rejected", "duplicate") and kb is None and r() < 0.35:
            late = r() < 0.2
            contact = created + timedelta(seconds=r() * 2 * 86400 + (3 * 86400 if late else 0))
        yield (
            f"B-{i:08d}", status, LINES[int(r() * 9)], f"138{i:08d}", category, "model",
            DEPARTMENTS[int(r() * 30)], "model", False, "[]", STATEMENTS[i % 7], "", "[]",
            False, "none",
            contact_due, due, contact, completed, score, solved, 1 + rehandle, rehandle, kb,
            False, 0, created, completed or created,
        )  # fmt: skip


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    return v


def _articles(conn: Any, paramstyle: str) -> None:
    now = datetime(2025, 11, 1, tzinfo=UTC)
    rows = [(f"文章{i}", "正文", "[]", "", "", "", now, now) for i in range(1, ARTICLES + 1)]
    marks = ", ".join([paramstyle] * 8)
    sql = (
        "INSERT INTO kb_articles (title, body, keywords, department, source, terms, "
        f"created_at, updated_at) VALUES ({marks})"
    )
    if paramstyle == "?":
        rows = [tuple(_sqlite_value(v) for v in r) for r in rows]
    conn.executemany(sql, rows)


def load_sqlite(path: Path, n: int) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    _articles(conn, "?")
    # Indexes built once after the load, not row by row during it.
    indexes = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' "
            "AND sql IS NOT NULL"
        )
    ]
    for sql in indexes:
        conn.execute(f"DROP INDEX {sql.split()[2 if 'UNIQUE' not in sql else 3]}")
    sql = f"INSERT INTO tickets ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    batch: list[tuple[Any, ...]] = []
    for row in tickets(n):
        batch.append(tuple(_sqlite_value(v) for v in row))
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch.clear()
    conn.executemany(sql, batch)
    for index in indexes:
        conn.execute(index)
    conn.commit()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("ANALYZE")
    conn.close()


def load_postgres(url: str, n: int) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            _articles(cur, "%s")
            with cur.copy(f"COPY tickets ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in tickets(n):
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE tickets")


def time_reports(app: Hotline, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for by in GROUPINGS:
        for period in PERIODS:
            times, rows = [], 0
            for _ in range(runs):
                t0 = time.perf_counter()
                rows = len(indicators(app, FIRST, LAST, by, period, TODAY))
                times.append(time.perf_counter() - t0)
            out[f"{by}/{period}"] = {
                "rows": rows,
                "median_s": round(statistics.median(times), 3),
                "runs_s": [round(t, 3) for t in times],
            }
            print(f"  {by:>10} / {period:<7} {statistics.median(times):6.3f} s ({rows} rows)")
    return out


def bench_one(backend: str, n: int, runs: int, tmp: Path) -> dict[str, Any] | None:
    settings = load_config(ROOT / "config.yaml", env={})
    drop = None
    if backend == "postgres":
        fresh = fresh_postgres(PG_ADMIN)
        if fresh is None:
            return None
        url, drop = fresh
    else:
        url = f"sqlite:///{tmp / 'indicators.sqlite3'}"
    try:
        upgrade(url)
        t0 = time.perf_counter()
        if backend == "postgres":
            load_postgres(url, n)
        else:
            load_sqlite(tmp / "indicators.sqlite3", n)
        generated = time.perf_counter() - t0
        print(f"{backend}: {n} tickets written and analyzed in {generated:.1f} s")
        settings = settings.model_copy(update={"database_url": url, "storage_dir": tmp / "var"})
        clock = FixedClock(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
        app = Hotline.open(settings, clock)
        try:
            reports = time_reports(app, runs)
        finally:
            app.close()
        return {"tickets": n, "generate_s": round(generated, 1), "reports": reports}
    finally:
        if drop is not None:
            create_engine(PG_ADMIN).dispose()
            drop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--db", default="sqlite,postgres")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "indicators.json"))
    p.add_argument("--note", default="")
    args = p.parse_args()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "note": args.note,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": [round(x, 1) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.db.split(","):
            found = bench_one(backend, args.tickets, args.runs, Path(tmp))
            if found is not None:
                result[backend] = found
    result["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    if "postgres" in result:
        with create_engine(PG_ADMIN).connect() as c:
            result["postgres_version"] = c.execute(text("show server_version")).scalar()
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
