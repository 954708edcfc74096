"""Lists and exports of many surveyed tickets read their 不满意原因 in one query for the
whole page (not one per ticket), through each door that lists tickets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from click.testing import CliRunner
from sqlalchemy import Engine, event, select

from harness.queue_load import bulk_drafts
from ivr.app import Hotline
from ivr.calls.recordings import add_transcript, store_recording
from ivr.cli import main
from ivr.store import Call, SurveyAttempt, Ticket

from .apikit import api_rig
from .conftest import ROOT
from .consolekit import browser, console_app, draft

COUNT = 30


def surveyed(hotline: Hotline, count: int) -> dict[str, str]:
    """`count` completed tickets whose caller answered 不满意 and said why; number -> why."""
    first = draft(hotline)
    numbers = bulk_drafts(hotline, first, count - 1)
    said = {}
    with hotline.db.read() as s:
        callers = s.execute(select(Ticket.id, Ticket.caller_number).order_by(Ticket.id)).all()
    calls = {
        tid: hotline.calls.start(
            provider="sim",
            provider_call_id=f"survey-{tid}",
            from_number="12345",
            to_number=caller,
            flow="survey",
            direction="outbound",
        ).call_id
        for tid, caller in callers
    }
    with hotline.db.session() as s:
        for t in s.scalars(select(Ticket).order_by(Ticket.id)):
            t.status, t.survey_outcome = "completed", "unsatisfied"
            s.add(
                SurveyAttempt(
                    campaign_id=None,
                    ticket_id=t.id,
                    attempt_no=1,
                    phone=t.caller_number or "",
                    status="done",
                    outcome="answered",
                    score="unsatisfied",
                    call_id=calls[t.id],
                )
            )
            call = s.get_one(Call, calls[t.id])
            rec = store_recording(hotline, s, call, f"r-{t.id}", data=b"RIFF", audio_format="wav")
            said[t.number] = f"第{t.id}张工单说的事情还没解决"
            add_transcript(hotline, s, rec, text=said[t.number], model="vosk-test")
    assert len(said) == len(numbers) + 1
    return said


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL statements every engine runs meanwhile."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def reason_queries(seen: list[str]) -> int:
    return sum("FROM survey_attempts" in s and "recordings" in s for s in seen)


def test_lists_and_exports_read_the_unsatisfied_reasons_in_one_query(hotline: Hotline) -> None:
    said = surveyed(hotline, COUNT)
    with api_rig(hotline) as rig, statements() as seen:
        page = rig.call("GET", "/api/tickets?limit=50", "supervisor").get_json()["items"]
    assert {t["number"]: t["unsatisfied_reasons"] for t in page} == {
        n: [why] for n, why in said.items()
    }
    assert reason_queries(seen) == 1

    env = {"DATABASE_URL": hotline.settings.resolved_database_url}
    args = ["--config", str(ROOT / "config.yaml"), "tickets", "list", "--limit", "50", "--json"]
    with statements() as seen:
        r = CliRunner().invoke(main, args, env=env)
    assert r.exit_code == 0, r.output
    listed = {t["number"]: t["unsatisfied_reasons"] for t in json.loads(r.output)}
    assert listed == {n: [why] for n, why in said.items()}
    assert reason_queries(seen) == 1

    with console_app(hotline) as app:
        lead = browser(app, "supervisor")
        with statements() as seen:
            text = lead.get("/console/queue/export.csv?status=completed").data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    column = rows[0].index("不满意原因")
    assert {r[0]: r[column] for r in rows[1:]} == said
    assert reason_queries(seen) == 1
