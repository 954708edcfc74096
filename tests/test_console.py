"""The operator console through the real Flask app: sign-in, roles, CSRF, audit, masking,
the live queue stream, recordings, campaigns, reports and exports."""

from __future__ import annotations

import io
import json
import stat
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import select

from ivr.accounts import find_user
from ivr.app import Hotline
from ivr.calls.recordings import add_transcript, store_recording
from ivr.calls.simulate import simulate_inbound
from ivr.services.campaigns import create_campaign
from ivr.services.tickets import complete
from ivr.store import Call, SurveyAttempt, Ticket
from ivr.surveys.outcomes import record_score
from ivr.tickets import version as ticket_version
from webhooks.console.secret import KEY_FILE, secret_key

from .consolekit import (
    CALLER,
    GAS_LEAK,
    NOISE,
    SETUP,
    audit_log,
    browser,
    console_app,
    draft,
    sse_events,
)


@pytest.fixture
def app(hotline: Hotline) -> Iterator[Flask]:
    with console_app(hotline) as app:
        yield app


def ticket(hotline: Hotline, tid: int) -> Ticket:
    with hotline.db.session() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def version(hotline: Hotline, tid: int) -> str:
    """The version the ticket page's forms carry."""
    with hotline.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return ticket_version(t)


# ---- sign-in, roles, CSRF ----------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    b = browser(app)
    for path in ("/console/queue", f"/console/tickets/{tid}", "/console/reports", "/"):
        r = b.get(path, follow_redirects=True)
        assert r.request.path == "/console/login", path
        assert "登录" in r.get_data(as_text=True)
    assert NOISE not in b.get(f"/console/tickets/{tid}").get_data(as_text=True)
    # A signed-out POST with a valid CSRF token is still refused.
    b.get("/console/login")
    assert b.post(f"/console/tickets/{tid}/accept").status_code == 401
    assert ticket(hotline, tid).status == "draft"


def test_sign_in_is_audited_and_returns_to_the_page_asked_for(app: Flask, hotline: Hotline) -> None:
    b = browser(app)
    b.get("/console/login")
    r = b.post("/console/login", {"username": "operator", "password": "wrong-password"})
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    r = b.post(
        "/console/login",
        {"username": "operator", "password": "password-123", "next": "/console/queue?urgent=1"},
    )
    assert r.status_code == 302 and r.headers["Location"] == "/console/queue?urgent=1"
    assert [(a, act) for a, act, _, _ in audit_log(hotline)] == [
        ("operator", "login.failed"),
        ("operator", "login"),
    ]
    b.get(r.headers["Location"])
    assert b.post("/console/logout").status_code == 302
    assert b.get("/console/queue").status_code == 302


def test_repeated_failed_sign_ins_lock_the_username_for_a_while(
    app: Flask, hotline: Hotline
) -> None:
    b = browser(app)
    for _ in range(5):
        assert b.sign_in("operator", "guessing-123").status_code == 401
    r = b.sign_in("operator")  # the right password, but too late
    assert r.status_code == 429 and "登录失败次数过多" in r.get_data(as_text=True)
    assert browser(app, "supervisor").get("/console/queue").status_code == 200  # others can
    hotline.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert browser(app).sign_in("operator").status_code == 302


def test_sign_in_never_redirects_off_site(app: Flask) -> None:
    b = browser(app)
    b.get("/console/login")
    r = b.post(
        "/console/login",
        {"username": "operator", "password": "password-123", "next": "//evil.example/x"},
    )
    assert r.headers["Location"] == "/console/queue"


def test_disabled_account_is_signed_out_at_once(app: Flask, hotline: Hotline) -> None:
    b = browser(app, "operator")
    assert b.get("/console/queue").status_code == 200
    with hotline.db.session() as s:
        user = find_user(s, "operator")
        assert user is not None
        user.active = False
    assert b.get("/console/queue").status_code == 302


def test_posts_without_the_csrf_token_are_refused(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    b = browser(app, "operator")
    b.get(f"/console/tickets/{tid}")
    v = version(hotline, tid)
    r = b.client.post(f"/console/tickets/{tid}/accept", data={"version": v})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "表单已过期" in page  # in Chinese, with the way back
    assert f'href="/console/tickets/{tid}"' in page
    r = b.client.post(f"/console/tickets/{tid}/accept", data={"version": v, "csrf_token": "forged"})
    assert r.status_code == 400
    # Nor can a sign-in form be posted from elsewhere.
    assert (
        browser(app).client.post("/console/login", data={"username": "operator"}).status_code == 400
    )
    assert ticket(hotline, tid).status == "draft"
    assert b.post(f"/console/tickets/{tid}/accept", {"version": v}).status_code == 303
    assert ticket(hotline, tid).status == "registered"


def test_operator_cannot_do_supervisor_work(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    op = browser(app, "operator")
    for path in (
        "/console/reports",
        "/console/campaigns",
        "/console/audit",
        "/console/reports/report.xlsx",
    ):
        assert op.get(path).status_code == 403, path
    op.get(f"/console/tickets/{tid}")
    op.post(f"/console/tickets/{tid}/accept", {"version": version(hotline, tid)})
    page = op.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert 'id="complete"' not in page and "统计报表" not in page
    r = op.post(
        f"/console/tickets/{tid}/complete", {"note": "已处理", "version": version(hotline, tid)}
    )
    assert r.status_code == 403
    assert ticket(hotline, tid).status == "registered"
    sup = browser(app, "supervisor")
    assert 'id="complete"' in sup.get(f"/console/tickets/{tid}").get_data(as_text=True)
    sup.post(
        f"/console/tickets/{tid}/complete", {"note": "已处理", "version": version(hotline, tid)}
    )
    assert ticket(hotline, tid).status == "completed"


def test_phone_numbers_are_masked_for_operators_only(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    op = browser(app, "operator")
    for path in ("/console/queue", f"/console/tickets/{tid}"):
        text = op.get(path).get_data(as_text=True)
        assert "138****8000" in text and CALLER not in text, path
    # exports are for supervisors: an operator gets no link and no file
    assert "导出 CSV" not in op.get("/console/queue").get_data(as_text=True)
    for fmt in ("csv", "xlsx"):
        assert op.get(f"/console/queue/export.{fmt}").status_code == 403
    sup = browser(app, "supervisor")  # the whole number, grouped as it is read
    assert "138 0013 8000" in sup.get("/console/queue").get_data(as_text=True)
    assert "138 0013 8000" in sup.get(f"/console/tickets/{tid}").get_data(as_text=True)


def test_numbers_said_in_the_statement_are_masked_for_operators(
    app: Flask, hotline: Hotline
) -> None:
    tid = draft(hotline, "小区路灯坏了，请回电13912345678联系我", line="12345", digits="")
    op = browser(app, "operator")
    for path in ("/console/queue", f"/console/tickets/{tid}"):
        text = op.get(path).get_data(as_text=True)
        assert "13912345678" not in text, path
    assert "139****5678" in op.get(f"/console/tickets/{tid}").get_data(as_text=True)
    sup = browser(app, "supervisor")
    assert "13912345678" in sup.get(f"/console/tickets/{tid}").get_data(as_text=True)


# ---- reviewing a draft ---------------------------------------------------------


def test_each_view_and_change_is_audited(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    first = draft(hotline, GAS_LEAK, line="12345", digits="3")
    op = browser(app, "operator")
    assert op.get(f"/console/tickets/{tid}").status_code == 200
    r = op.post(
        f"/console/tickets/{tid}/edit",
        {
            "version": version(hotline, tid),
            "category": "投诉",
            "department": "生态环境局",
            "address": "五华区人民路",
            "summary": "烧烤店夜间噪音扰民",
            "urgent": "on",
        },
        follow_redirects=True,
    )
    assert "已保存" in r.get_data(as_text=True)
    t = ticket(hotline, tid)
    assert (t.department, t.summary, t.urgent) == ("生态环境局", "烧烤店夜间噪音扰民", True)
    assert (t.address or {}).get("district") == "五华区"
    op.post(f"/console/tickets/{first}/accept", {"version": version(hotline, first)})
    op.post(
        f"/console/tickets/{tid}/duplicate",
        {"version": version(hotline, tid), "original": ticket(hotline, first).number},
    )
    assert ticket(hotline, tid).status == "duplicate"
    sup = browser(app, "supervisor")
    sup.post(
        f"/console/tickets/{first}/complete", {"version": version(hotline, first), "note": "已修复"}
    )

    entries = [e for e in audit_log(hotline) if e[1] != "login"]
    assert [(a, act, t_id) for a, act, t_id, _ in entries] == [
        ("operator", "ticket.view", tid),
        ("user:operator", "ticket.update", tid),
        ("operator", "ticket.view", tid),  # the page shown after saving
        ("user:operator", "ticket.accept", first),
        ("user:operator", "ticket.duplicate", tid),
        ("user:supervisor", "ticket.complete", first),
    ]
    update = entries[1][3]["changes"]
    assert update["department"] == {"old": "城市管理综合执法局", "new": "生态环境局"}
    assert update["urgent"] == {"old": False, "new": True}
    assert update["due_date"]["new"] == "2026-11-23"  # urgent: due today
    assert entries[4][3]["changes"]["duplicate_of"]["new"] == ticket(hotline, first).number
    assert entries[5][3]["changes"]["result_note"] == {"old": None, "new": "已修复"}
    # The ticket page shows its history.
    page = sup.get(f"/console/tickets/{tid}").get_data(as_text=True)
    # The history as an operator reads it: Chinese names and values, no Python values.
    assert "承办部门: 城市管理综合执法局 → 生态环境局" in page
    assert "紧急: 否 → 是" in page and "状态: 草稿 → 重复件" in page
    assert "True" not in page and "urgent:" not in page and "ticket.update" not in page


def test_reject_out_of_scope_needs_a_reason(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline, "我要起诉我的房东他不退押金", line="12345", digits="")
    op = browser(app, "operator")
    page = op.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "非受理范围" in page
    r = op.post(
        f"/console/tickets/{tid}/accept", {"version": version(hotline, tid)}, follow_redirects=True
    )
    page = r.get_data(as_text=True)
    assert "标记为非受理范围：请先取消该标记" in page and "out of scope" not in page
    assert ticket(hotline, tid).status == "draft"
    r = op.post(
        f"/console/tickets/{tid}/reject",
        {"version": version(hotline, tid), "reason": "诉讼事项请通过法院解决"},
        follow_redirects=True,
    )
    t = ticket(hotline, tid)
    assert (t.status, t.result_note) == ("rejected", "诉讼事项请通过法院解决")
    assert "不予受理" in r.get_data(as_text=True)


def test_a_change_based_on_an_old_copy_is_refused(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    a, b = browser(app, "operator"), browser(app, "supervisor")
    stale = version(hotline, tid)
    hotline.clock.advance(minutes=1)  # type: ignore[attr-defined]
    a.post(
        f"/console/tickets/{tid}/edit",
        {"version": stale, "category": "投诉", "department": "公安局", "summary": "A"},
    )
    r = b.post(
        f"/console/tickets/{tid}/edit",
        {"version": stale, "category": "投诉", "department": "税务局", "summary": "B"},
        follow_redirects=True,
    )
    assert "在您打开后已被他人修改" in r.get_data(as_text=True)
    assert ticket(hotline, tid).department == "公安局"


def test_bad_edit_is_shown_and_changes_nothing(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    op = browser(app, "operator")
    r = op.post(
        f"/console/tickets/{tid}/edit",
        {"version": version(hotline, tid), "category": "闲聊", "department": "公安局"},
        follow_redirects=True,
    )
    assert "没有这个类别" in r.get_data(as_text=True)
    assert ticket(hotline, tid).department == "城市管理综合执法局"
    assert [e for e in audit_log(hotline) if e[1] == "ticket.update"] == []


def tone_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(struct.pack("<h", (i % 40 - 20) * 800) for i in range(int(seconds * rate)))
        )
    return path


def test_recording_is_served_with_ranges(app: Flask, hotline: Hotline, tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "statement.wav")
    sim = simulate_inbound(hotline, line="12345", caller=CALLER, audio=wav)
    assert sim.ticket is not None
    with hotline.db.session() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == sim.ticket["number"])).one()
        tid = t.id
    op = browser(app, "operator")
    page = op.get(f"/console/tickets/{tid}").get_data(as_text=True)
    src = page.split('<audio id="recording" controls preload="auto" src="')[1].split('"')[0]
    full = op.get(src)
    assert full.status_code == 200 and full.mimetype == "audio/wav"
    assert full.data == wav.read_bytes()
    assert "no-store" in full.headers["Cache-Control"]  # not left in the browser's cache
    part = op.get(src, headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.data == wav.read_bytes()[:44]
    assert part.headers["Content-Range"] == f"bytes 0-43/{wav.stat().st_size}"
    assert browser(app).get(src).status_code == 302  # signed out: no audio


def test_transcript_marks_doubtful_words(app: Flask, hotline: Hotline) -> None:
    # the call service creates the call as a real one would
    step = hotline.calls.start(
        provider="sim", provider_call_id="c1", from_number=CALLER, to_number="12345"
    )
    with hotline.db.session() as s:
        row = s.get(Call, step.call_id)
        assert row is not None
        rec = store_recording(hotline, s, row, "r1", data=b"RIFF", audio_format="wav")
        add_transcript(
            hotline,
            s,
            rec,
            text="路灯 坏 了",
            model="vosk-test",
            words=[
                {"word": "路灯", "conf": 0.95, "start": 0.0, "end": 0.4},
                {"word": "坏", "conf": 0.31, "start": 0.4, "end": 0.6},
                {"word": "了", "conf": 0.9, "start": 0.6, "end": 0.7},
            ],
            confidence=0.72,
        )
    from ivr.intake.drafts import create_draft

    with hotline.db.session() as s:
        row = s.get(Call, step.call_id)
        assert row is not None
        tid = create_draft(hotline, s, row).id
    page = browser(app, "operator").get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert '<mark class="low" title="置信度 0.31">坏</mark>' in page
    assert '<span title="置信度 0.95">路灯</span>' in page


# ---- the live queue --------------------------------------------------------------


def test_stream_pushes_new_drafts_with_filter_match(app: Flask, hotline: Hotline) -> None:
    op = browser(app, "operator")
    page = op.get("/console/queue?line=12315").get_data(as_text=True)
    stream = page.split('data-stream="')[1].split('"')[0].replace("&amp;", "&")
    new = draft(hotline)  # dialed 12315: matches the filter
    other = draft(hotline, GAS_LEAK, line="12345", digits="3")
    events = sse_events(op.client, stream, 2)
    assert [(e["id"], e["matches"]) for e in events] == [(new, True), (other, False)]
    assert "138****8000" in events[0]["html"] and 'class="urgent' in events[1]["html"]
    # A reconnecting browser resumes after what it saw (Last-Event-ID).
    seen = str(ticket(hotline, other).change_seq)  # the event id: its change number
    third = draft(hotline)
    events = sse_events(op.client, stream, 1, {"Last-Event-ID": seen})
    assert [e["id"] for e in events] == [third]


def test_queue_filters_and_flags(app: Flask, hotline: Hotline) -> None:
    noise = draft(hotline)
    gas = draft(hotline, GAS_LEAK, line="12345", digits="3")
    op = browser(app, "operator")
    text = op.get("/console/queue?urgent=1").get_data(as_text=True)
    assert f'id="t-{gas}"' in text and f'id="t-{noise}"' not in text
    assert "紧急" in text and "临期" in text  # due today
    text = op.get("/console/queue?line=12315&category=投诉").get_data(as_text=True)
    assert f'id="t-{noise}"' in text and f'id="t-{gas}"' not in text
    text = op.get("/console/queue?status=registered").get_data(as_text=True)
    assert "没有符合条件的工单" in text


# ---- campaigns, reports, exports ---------------------------------------------------


def surveyed(hotline: Hotline, scores: list[str]) -> int:
    for _ in scores:
        tid = draft(hotline)
        complete(hotline, SETUP, tid, "已协调城管执法")
    campaign_id, planned = create_campaign(hotline, SETUP, "11月回访")
    assert planned == len(scores)
    with hotline.db.session() as s:
        attempts = s.scalars(select(SurveyAttempt).order_by(SurveyAttempt.id)).all()
        for attempt, score in zip(attempts, scores, strict=True):
            attempt.status = "done"
            record_score(s, {"attempt_id": attempt.id, "score": score}, hotline.clock.now())
    return campaign_id


def test_campaign_progress_and_rate(app: Flask, hotline: Hotline) -> None:
    cid = surveyed(hotline, ["satisfied", "basically_satisfied", "unsatisfied"])
    sup = browser(app, "supervisor")
    page = sup.get("/console/campaigns").get_data(as_text=True)
    assert "11月回访" in page and "3/3" in page and "66.7%" in page
    r = sup.post(f"/console/campaigns/{cid}/pause", follow_redirects=True)
    assert r.status_code == 200
    actions = [(a, act) for a, act, _, _ in audit_log(hotline)]
    assert ("user:supervisor", "campaign.pause") in actions


def test_reports_draw_charts_and_export(app: Flask, hotline: Hotline) -> None:
    surveyed(hotline, ["satisfied", "unsatisfied"])
    draft(hotline, GAS_LEAK, line="12345", digits="3")
    hotline.clock.advance(days=3)  # type: ignore[attr-defined]
    sup = browser(app, "supervisor")
    page = sup.get("/console/reports?from=2026-11-20&to=2026-11-26").get_data(as_text=True)
    assert page.count("<svg") == 4
    assert "12315 来电" in page  # calls per line per day
    assert "城市管理综合执法局" in page  # 满意率 by department, and in the tables
    assert "2026-W48" in page
    assert "烧烤店" in page or "噪音" in page  # complaint keywords
    assert "燃气公司" in page  # the gas leak is overdue (due the day it came in)

    csv_text = sup.get("/console/reports/satisfaction.csv").data.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "部门,周,回访工单,有效评价,满意率"
    assert "城市管理综合执法局,2026-W48,2,2,0.5" in csv_text
    xlsx = sup.get("/console/reports/report.xlsx?from=2026-11-20&to=2026-11-26")
    wb = load_workbook(io.BytesIO(xlsx.data))
    assert wb.sheetnames == [
        "来电与工单（按热线、日期）",
        "满意率（按部门、周）",
        "超期工单",
        "投诉高频词",
    ]
    rows = list(wb["来电与工单（按热线、日期）"].values)
    assert rows[0] == ("日期", "热线", "来电", "工单") and ("2026-11-23", "12315", 2, 2) in rows
    assert [a for a in audit_log(hotline) if a[1] == "report.export"]


def test_exports_keep_formulas_out(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    op = browser(app, "operator")
    op.post(
        f"/console/tickets/{tid}/edit",
        {
            "version": version(hotline, tid),
            "category": "投诉",
            "department": "公安局",
            "summary": '=HYPERLINK("http://x")',
        },
    )
    text = browser(app, "supervisor").get("/console/queue/export.csv").data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text


# ---- the session key -----------------------------------------------------------------


def test_session_key_from_env_or_kept_on_disk(hotline: Hotline) -> None:
    settings = hotline.settings
    assert secret_key(settings, env={"IVR_SECRET_KEY": "from-env"}) == "from-env"
    first = secret_key(settings, env={})
    assert len(first) == 64 and secret_key(settings, env={}) == first
    path = settings.storage_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tabs_beyond_the_stream_limit_poll_instead(hotline: Hotline) -> None:
    limited = hotline.settings.model_copy(
        update={"console": hotline.settings.console.model_copy(update={"streams_per_process": 0})}
    )
    with console_app(Hotline(limited, hotline.db, hotline.clock)) as app:
        op = browser(app, "operator")
        page = op.get("/console/queue").get_data(as_text=True)
        stream = page.split('data-stream="')[1].split('"')[0].replace("&amp;", "&")
        new = draft(hotline)
        r = op.client.get(stream)  # the whole response: it ends after one check
        body = r.get_data(as_text=True)
        assert body.startswith("retry: 5000\n")
        assert json.loads(body.split("data: ")[1].split("\n")[0])["id"] == new


def test_signed_out_stream_is_refused_not_redirected(app: Flask) -> None:
    r = browser(app).client.get("/console/queue/stream", headers={"Accept": "text/event-stream"})
    assert r.status_code == 401


def test_transcript_words_join_like_the_language_does() -> None:
    from webhooks.console.review import transcript_words

    words = transcript_words(
        [
            {"word": "我家", "conf": 0.9},
            {"word": "wifi", "conf": 0.4},
            {"word": "坏", "conf": 0.8},
            {"word": "了", "conf": 0.9},
        ],
        0.6,
        False,
    )
    assert [(w["text"], w["space"], w["low"]) for w in words] == [
        ("我家", False, False),
        ("wifi", True, True),
        ("坏", True, False),
        ("了", False, False),
    ]


# ---- accounts ------------------------------------------------------------------------


def test_admin_manages_accounts_and_others_cannot(app: Flask, hotline: Hotline) -> None:
    for role in ("operator", "supervisor"):
        assert browser(app, role).get("/console/users").status_code == 403
    admin = browser(app, "admin")
    assert "operator" in admin.get("/console/users").get_data(as_text=True)
    r = admin.post(
        "/console/users",
        {"username": "zhao", "role": "operator", "password": "zhao-password"},
        follow_redirects=True,
    )
    assert "已添加用户 zhao" in r.get_data(as_text=True)
    assert browser(app, "zhao", "zhao-password").get("/console/queue").status_code == 200
    with hotline.db.session() as s:
        zhao = find_user(s, "zhao")
        me = find_user(s, "admin")
        assert zhao is not None and me is not None
        zhao_id, my_id = zhao.id, me.id
    admin.post(
        f"/console/users/{zhao_id}",
        {"role": "supervisor", "active": "on", "password": "new-password-1"},
    )
    assert browser(app, "zhao", "new-password-1").get("/console/reports").status_code == 200
    admin.post(f"/console/users/{zhao_id}", {"role": "supervisor"})  # unchecked: disabled
    assert browser(app).sign_in("zhao", "new-password-1").status_code == 401
    r = admin.post(
        f"/console/users/{my_id}", {"role": "operator", "active": "on"}, follow_redirects=True
    )
    assert "cannot demote or disable your own account" in r.get_data(as_text=True)
    updates = [d for _, act, _, d in audit_log(hotline) if act.startswith("user.")]
    assert updates[0] == {"username": "zhao", "role": "operator"}
    assert updates[1] == {
        "username": "zhao",
        "role": {"old": "operator", "new": "supervisor"},
        "password": "changed",
    }
    assert updates[2]["active"] == {"old": True, "new": False}
    assert "new-password-1" not in json.dumps(updates)


def test_the_audit_log_page_finds_a_user_by_name(app: Flask, hotline: Hotline) -> None:
    """Sign-ins are logged under the bare name, changes as user:<name>: a name finds both."""
    admin = browser(app, "admin")
    admin.post(
        "/console/users", {"username": "zhao", "role": "operator", "password": "long enough"}
    )
    page = browser(app, "supervisor").get("/console/audit?actor=admin").get_data(as_text=True)
    assert "user:admin" in page and "user.create" in page and ">登录<" in page
    page = browser(app, "supervisor").get("/console/audit?actor=user:admin").get_data(as_text=True)
    assert "user.create" in page and ">登录<" not in page
    assert "zhao" not in browser(app, "admin").get("/console/audit?actor=supervisor").get_data(
        as_text=True
    )
