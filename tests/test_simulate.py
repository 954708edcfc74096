"""`ivr simulate` end to end: a call stored as a real one would be, and its draft."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ivr.app import Hotline
from ivr.calls.service import UnknownCall
from ivr.calls.simulate import SimulationError, simulate_inbound
from ivr.cli import main
from ivr.clock import SystemClock
from ivr.flow import Digits, Transfer
from ivr.store import Call, CallEvent, Recording, Ticket, Transcript
from ivr.workdays import WorkCalendar

from .conftest import ROOT

H01 = "我要投诉我们小区楼下的烧烤店每天晚上噪音扰民到凌晨两点"
H05 = "我要举报一家药店在卖过期的药品"
H16 = "我们这里燃气管道好像漏气了闻到很大的味道"


def counts(app: Hotline) -> tuple[int, int, int]:
    with app.db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Call)) or 0,
            s.scalar(select(func.count()).select_from(CallEvent)) or 0,
            s.scalar(select(func.count()).select_from(Ticket)) or 0,
        )


def test_simulated_call_is_stored_like_a_real_one(hotline: Hotline) -> None:
    sim = simulate_inbound(hotline, line="12315", caller="13800138000", digits="2", text=H01)
    t = sim.ticket
    assert t is not None
    assert t["number"] == "12345-20261123-00001"
    assert (t["status"], t["line"], t["caller"]) == ("draft", "12315", "138****8000")
    assert (t["category"], t["category_source"]) == ("投诉", "menu")
    assert t["department"] == "城市管理综合执法局"
    # Monday 2026-11-23: contact within 2 working days, 投诉 handled within 15.
    assert t["contact_due"] == "2026-11-25" and t["due_date"] == "2026-12-14"
    assert t["statement"] == H01 and not t["urgent"] and t["scope"] is None
    with hotline.db.session() as s:
        call = s.get(Call, sim.call_id)
        assert call is not None
        assert (call.line_number, call.line_source, call.status) == ("12315", "dialed", "completed")
        assert call.from_number == "13800138000"
        names = [e.name for e in call.events]
        assert names[:3] == ["Start", "Say", "Gather"] and names[-1] == "Hangup"
        rec = s.scalars(select(Recording).where(Recording.call_id == call.id)).one()
        tr = s.scalars(select(Transcript).where(Transcript.recording_id == rec.id)).one()
        assert tr.model == "text-input" and tr.normalized_text == H01
    readback = [v.text for v in sim.dialogue if getattr(v, "prompt", "") == "readback"]
    assert readback and "幺二三四五，二零二六幺幺二三，零零零零幺" in readback[0]
    assert "11月25日" in readback[0] and "12月14日" in readback[0]


def test_no_key_takes_category_from_statement(hotline: Hotline) -> None:
    t = simulate_inbound(hotline, line="12345", caller="13800138000", text=H05).ticket
    assert t is not None and (t["category"], t["category_source"]) == ("举报", "text")
    assert t["department"] == "市场监督管理局"


def test_urgent_statement_is_due_today(hotline: Hotline) -> None:
    t = simulate_inbound(hotline, line="12345", caller="13800138000", digits="3", text=H16).ticket
    assert t is not None and t["urgent"]
    assert t["due_date"] == t["contact_due"] == "2026-11-23"


def test_emergency_is_flagged_and_caller_told_the_number(hotline: Hotline) -> None:
    sim = simulate_inbound(
        hotline, line="12345", caller="13800138000", digits="3", text="我家楼下的饭店着火了火很大"
    )
    assert sim.ticket is not None and sim.ticket["out_of_scope"]
    assert sim.ticket["scope"]["kind"] == "emergency"
    # the advice is said on its own or as the prompt of the operator offer (press 0)
    said = [getattr(v, "text", "") for v in sim.dialogue] + [
        p.text for v in sim.dialogue for p in getattr(v, "prompts", ())
    ]
    assert any("119" in s for s in said)


def test_hangup_while_speaking_still_creates_draft(hotline: Hotline) -> None:
    sim = simulate_inbound(
        hotline,
        line="12331",
        caller="13800138000",
        digits="5",
        text=H05,
        hangup_during_recording=True,
    )
    assert sim.ticket is not None and sim.ticket["statement"] == H05
    assert not any(getattr(v, "prompt", "") == "readback" for v in sim.dialogue)


def test_operator_transfer_leaves_no_ticket(hotline: Hotline) -> None:
    sim = simulate_inbound(hotline, line="12345", caller="13800138000", digits="0")
    assert sim.ticket is None
    assert isinstance(sim.dialogue[-1], Transfer)


def test_similar_statement_from_same_caller_is_linked_as_duplicate(hotline: Hotline, clock) -> None:  # type: ignore[no-untyped-def]
    first = simulate_inbound(hotline, line="12345", caller="13800138000", digits="2", text=H01)
    clock.advance(days=3)
    again = simulate_inbound(
        hotline,
        line="12345",
        caller="+86 138 0013 8000",
        digits="2",
        text="我还是要投诉小区楼下的烧烤店晚上噪音扰民到凌晨两点",
    )
    other = simulate_inbound(hotline, line="12345", caller="13900139000", digits="2", text=H01)
    assert first.ticket and again.ticket and other.ticket
    assert again.ticket["duplicate_of"] == first.ticket["number"]
    assert other.ticket["duplicate_of"] is None  # a different caller
    clock.advance(days=8)
    late = simulate_inbound(hotline, line="12345", caller="13800138000", digits="2", text=H01)
    assert late.ticket and late.ticket["duplicate_of"] is None  # outside the 7-day window


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"digits": "2x"}, "--digits '2x': only keypresses 0-9, * and # are allowed"),
        ({"line": "99999"}, "--line '99999': unknown line; configured lines: 12345, 12315"),
        ({"caller": "abc"}, "--from 'abc': not a phone number"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(hotline: Hotline, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    args = {"line": "12345", "caller": "13800138000", "text": H01, **kwargs}
    before = counts(hotline)
    with pytest.raises(SimulationError) as err:
        simulate_inbound(hotline, **args)
    assert message in str(err.value)
    assert counts(hotline) == before


def test_retried_start_and_events_do_not_duplicate(hotline: Hotline) -> None:
    calls = hotline.calls
    a = calls.start(
        provider="sim", provider_call_id="X1", from_number="13800138000", to_number="12320"
    )
    b = calls.start(
        provider="sim", provider_call_id="X1", from_number="13800138000", to_number="12320"
    )
    assert a.call_id == b.call_id and a.verbs == b.verbs
    assert counts(hotline)[0] == 1
    with pytest.raises(UnknownCall):
        calls.handle("sim", "never-started", Digits("1"))


# ---- the command line ------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, migrate: Callable[[str], None]) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate(url)
    return {"DATABASE_URL": url}


def ivr(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--config", str(ROOT / "config.yaml"), *args], env=env)


def simulate_complaint(env: dict[str, str], *extra: str, line: str = "12315"):  # type: ignore[no-untyped-def]
    """`ivr simulate --json`: H01 after pressing 2 (投诉)."""
    args = ("--line", line, "--from", "13800138000", "--digits", "2", "--text", H01, "--json")
    return ivr(env, "simulate", *args, *extra)


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_simulate_json_then_tickets_commands(cli_env: dict[str, str]) -> None:
    r = simulate_complaint(cli_env, line="0871-12315")
    assert r.exit_code == 0, r.output
    t = json.loads(r.output)
    assert (t["line"], t["category"], t["caller"]) == ("12315", "投诉", "138****8000")
    today = SystemClock().now().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    cal = WorkCalendar()
    assert date.fromisoformat(t["due_date"]) == cal.add_workdays(today.date(), 15)
    assert "13800138000" not in r.output

    r = ivr(cli_env, "tickets", "list")
    assert r.exit_code == 0 and t["number"] in r.output and "投诉" in r.output
    r = ivr(cli_env, "tickets", "show", t["number"], "--json")
    assert json.loads(r.output)["statement"] == H01
    r = ivr(cli_env, "tickets", "complete", t["number"], "--note", "已责令整改")
    assert r.exit_code == 0 and "completed" in r.output and "已责令整改" in r.output
    r = ivr(cli_env, "tickets", "list", "--status", "completed", "--json")
    assert [x["number"] for x in json.loads(r.output)] == [t["number"]]
    r = ivr(cli_env, "tickets", "complete", t["number"], "--note", "again")
    assert r.exit_code == 1 and "is completed; it cannot become completed" in r.output
    r = ivr(cli_env, "tickets", "show", "12345-19990101-00001")
    assert r.exit_code == 1 and "no ticket" in r.output


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_simulate_readable_summary(cli_env: dict[str, str]) -> None:
    r = ivr(
        cli_env,
        "simulate",
        "--line",
        "12369",
        "--from",
        "13800138000",
        "--text",
        "有人在河边偷偷倒建筑垃圾污染很严重",
    )
    assert r.exit_code == 0, r.output
    assert "IVR: 您好，您拨打的12369环保举报热线已并入12345政务服务便民热线。" in r.output
    assert "[waits for 1 key(s)]" in r.output and "工单 12345-" in r.output
    assert "生态环境局" in r.output


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_simulate_invalid_digits_changes_nothing(cli_env: dict[str, str]) -> None:
    r = ivr(cli_env, "simulate", "--from", "13800138000", "--digits", "1a", "--text", "x")
    assert r.exit_code == 2 and "error: --digits '1a'" in r.output
    assert "Traceback" not in r.output
    r = ivr(cli_env, "tickets", "list", "--json")
    assert json.loads(r.output) == []


def test_domain_vocabulary_corrects_near_misses_in_statements(hotline: Hotline) -> None:
    # 盘笼区 sounds like the configured 盘龙区 (pan long qu); 五华区 is left alone.
    vocab = [*hotline.settings.asr.vocabulary, "盘龙区"]
    hotline.settings = hotline.settings.model_copy(
        update={"asr": hotline.settings.asr.model_copy(update={"vocabulary": vocab})}
    )
    t = simulate_inbound(
        hotline,
        line="12319",
        caller="13800138000",
        digits="3",
        text="我 家 在 盘笼区 青年路 一百二十三 号 路灯 坏 了",
    ).ticket
    assert t is not None
    assert t["statement"] == "我家在盘龙区青年路123号路灯坏了"
    assert (t["address"] or {}).get("district") == "盘龙区"


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_twilio_campaign_without_credentials_says_what_to_set(
    cli_env: dict[str, str],
) -> None:
    r = ivr(cli_env, "simulate", "--line", "12345", "--from", "13800138000", "--text", H01)
    assert r.exit_code == 0, r.output
    env = {**cli_env, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}
    r = ivr(env, "campaign", "create", "--name", "回访")
    assert r.exit_code == 0, r.output
    r = ivr(env, "campaign", "run", "1", "--dialer", "twilio")
    assert r.exit_code == 2
    assert "TWILIO_ACCOUNT_SID" in r.output and "Traceback" not in r.output


def test_cli_simulate_at_a_chosen_time_uses_that_days_calendar(cli_env: dict[str, str]) -> None:
    r = simulate_complaint(cli_env, "--at", "2026-12-14T10:00")
    assert r.exit_code == 0, r.output
    t = json.loads(r.stdout)
    # 投诉 (15 working days) registered Monday 2026-12-14; 2027-01-01 is 元旦 (estimated).
    assert t["number"] == "12345-20261214-00001" and t["category"] == "投诉"
    assert (t["contact_due"], t["due_date"]) == ("2026-12-16", "2027-01-05")
    called = datetime(2026, 12, 14, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert datetime.fromisoformat(t["created_at"]) == called
