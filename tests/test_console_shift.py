"""A whole shift in the console, through the real Flask app: a queue of a thousand
drafts (pages, totals, search, filters, most pressing first), claims (认领), picking
the original of a duplicate, correcting a statement, the transcript that arrives
later, campaigns created and started from the console with the unsatisfied
citizens' reasons, Chinese error pages and history, exports Excel reads right."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import select

from harness.queue_load import bulk_drafts
from ivr.app import Hotline
from ivr.calls.recordings import add_transcript, store_recording
from ivr.intake.drafts import create_draft
from ivr.queries.tickets import TicketQuery, search
from ivr.services.accounts import create_user
from ivr.services.campaigns import create_campaign
from ivr.services.tickets import complete
from ivr.store import Call, SurveyAttempt, Ticket
from ivr.surveys.outcomes import record_score
from ivr.tickets import to_dict
from ivr.tickets import version as ticket_version

from .apikit import api_rig
from .consolekit import (
    CALLER,
    NOISE,
    PASSWORD,
    SETUP,
    audit_log,
    browser,
    console_app,
    draft,
    sse_events,
)

ROW = re.compile(r'<tr id="t-(\d+)"')


@pytest.fixture
def app(hotline: Hotline) -> Iterator[Flask]:
    with console_app(hotline) as app:
        yield app


def ticket(hotline: Hotline, tid: int) -> Ticket:
    with hotline.db.read() as s:
        t = s.get(Ticket, tid)
        assert t is not None
        return t


def version(hotline: Hotline, tid: int) -> str:
    with hotline.db.read() as s:
        return ticket_version(s.get_one(Ticket, tid))


def rows(page: str) -> list[int]:
    return [int(i) for i in ROW.findall(page)]


def flashes(page: str) -> list[str]:
    return re.findall(r'<p class="flash \w+" role="status">([^<]*)</p>', page)


# ---- the queue -------------------------------------------------------------------------


def busy_queue(hotline: Hotline, count: int = 120) -> tuple[int, list[str]]:
    model = draft(hotline)
    return model, bulk_drafts(hotline, model, count)


def test_a_thousand_drafts_are_paged_with_the_total_most_pressing_first(
    app: Flask, hotline: Hotline
) -> None:
    _, numbers = busy_queue(hotline, 1000)
    # The oldest draft becomes urgent and due today: it must not hide on the last page.
    with hotline.db.session() as s:
        oldest = s.scalars(select(Ticket).where(Ticket.number == numbers[-1])).one()
        oldest.urgent, oldest.due_date = True, date(2026, 11, 23)
        urgent_id = oldest.id
    op = browser(app, "operator")
    page = op.get("/console/queue").get_data(as_text=True)
    assert "共 <b>1001</b> 条 · 第 1/21 页" in page
    first = rows(page)
    assert len(first) == 50 and first[0] == urgent_id
    with hotline.db.read() as s:
        shown = [s.get_one(Ticket, i) for i in first]
    keys = [(not t.urgent, t.due_date, t.id) for t in shown]
    assert keys == sorted(keys)  # urgent first, then the nearest due date, then the oldest
    # Every draft is on exactly one page.
    seen: list[int] = []
    for n in range(1, 22):
        seen += rows(op.get(f"/console/queue?page={n}").get_data(as_text=True))
    assert len(seen) == len(set(seen)) == 1001
    last = op.get("/console/queue?page=999").get_data(as_text=True)
    assert "第 21/21 页" in last and len(rows(last)) == 1
    # Ticket numbers, times and statuses do not wrap at 1366 px (the browser test looks).
    assert 'class="number"' in page and 'class="status"' in page


def test_the_queue_finds_by_number_whole_phone_number_and_words(
    app: Flask, hotline: Hotline
) -> None:
    _, numbers = busy_queue(hotline, 60)
    gas = draft(hotline, "我们这里燃气管道好像漏气了闻到很大的味道", line="12345", digits="3")
    op = browser(app, "operator")

    def found(query: str) -> list[int]:
        return rows(op.get("/console/queue?" + query).get_data(as_text=True))

    assert found(f"q={numbers[7]}") == [ticket_id(hotline, numbers[7])]
    caller = ticket(hotline, ticket_id(hotline, numbers[3])).caller_number
    assert caller is not None
    assert found(f"q={caller}") == [ticket_id(hotline, numbers[3])]
    # Part of a phone number finds nothing, nor do digits the caller said: masked digits
    # cannot be guessed by searching.
    assert found(f"q={caller[:9]}") == []
    spoken = draft(hotline, "我的电话是13912345678请回电路灯坏了", line="12345", digits="")
    assert found("q=路灯坏了") == [spoken] and found("q=9123456") == found("q=电话1391") == []
    assert found("q=燃气管道") == [gas]
    assert found("q=燃气管道&department=城市管理综合执法局") == []
    assert found(f"q=燃气管道&department={ticket(hotline, gas).department}") == [gas]
    tz = hotline.settings.tz
    with hotline.db.read() as s:
        today = {
            t.id
            for t in s.scalars(select(Ticket))
            if t.created_at.astimezone(tz).date() == date(2026, 11, 23) and not t.urgent
        }
    assert 2 < len(today) < 50 and gas not in today  # the gas leak is urgent
    assert set(found("urgent=0&from=2026-11-23&to=2026-11-23")) == today
    assert found("from=2026-11-24") == []
    # The API finds the same with the same query.
    with api_rig(hotline) as rig:
        r = rig.call("GET", "/api/tickets?q=燃气管道&status=draft", "operator")
        assert [t["number"] for t in r.get_json()["items"]] == [ticket(hotline, gas).number]
        assert rig.call("GET", f"/api/tickets?q={caller[:9]}").get_json()["items"] == []
        assert rig.call("GET", "/api/tickets?q=" + "x" * 101).status_code == 400
    # Nonsense in the address is ignored rather than refused.
    assert len(found("status=nonsense&page=x&from=20261")) == 50


def ticket_id(hotline: Hotline, number: str) -> int:
    with hotline.db.read() as s:
        return s.scalars(select(Ticket.id).where(Ticket.number == number)).one()


@pytest.mark.parametrize(
    "query",
    [
        TicketQuery(status="draft"),
        TicketQuery(text="烧烤店", urgent=False),
        TicketQuery(text="12345-20261101-0001"),
        TicketQuery(created_from=date(2026, 11, 23), department="城市管理综合执法局"),
        TicketQuery(text="0001"),  # too short for a phone number: only ticket numbers
        TicketQuery(text="13800138000"),  # a whole phone number
    ],
)
def test_the_live_queue_and_the_page_agree_on_what_a_query_finds(
    hotline: Hotline, query: TicketQuery
) -> None:
    busy_queue(hotline, 30)
    draft(hotline, "请问办理社保卡需要带哪些材料", line="12333", digits="")
    tz = hotline.settings.tz
    with hotline.db.read() as s:
        every = s.scalars(select(Ticket)).all()
        wanted = {t.id for t in every if query.matches(t, tz)}
        assert {t.id for t in search(s, query, tz, 1000)[0]} == wanted
    assert wanted


# ---- claims ------------------------------------------------------------------------------


def test_a_claimed_draft_is_worked_by_one_operator_and_others_see_who(
    app: Flask, hotline: Hotline
) -> None:
    tid = draft(hotline)
    create_user(hotline, SETUP, "wang", PASSWORD, "operator")
    li, wang, lead = browser(app, "operator"), browser(app, "wang"), browser(app, "supervisor")
    queue = wang.get("/console/queue").get_data(as_text=True)
    stream = queue.split('data-stream="')[1].split('"')[0].replace("&amp;", "&")
    li.get(f"/console/tickets/{tid}")
    hotline.clock.advance(minutes=1)  # type: ignore[attr-defined]
    page = li.post(f"/console/tickets/{tid}/claim", follow_redirects=True).get_data(as_text=True)
    assert "已认领" in flashes(page)[0] and "您已认领此工单" in page
    # Wang's open queue is told at once.
    (event,) = sse_events(wang.client, stream, 1)
    assert event["id"] == tid and "operator 处理中" in event["html"]

    # Wang sees it in the queue and on the page, and cannot act on it.
    assert "operator 处理中" in wang.get("/console/queue").get_data(as_text=True)
    page = wang.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "<b>operator</b> 已认领此工单" in page and 'id="claim-button"' not in page
    r = wang.post(
        f"/console/tickets/{tid}/accept", {"version": version(hotline, tid)}, follow_redirects=True
    )
    assert "已由 operator 认领" in flashes(r.get_data(as_text=True))[0]
    assert ticket(hotline, tid).status == "draft"
    r = wang.post(f"/console/tickets/{tid}/release", follow_redirects=True)
    assert "只有班长可以释放" in r.get_data(as_text=True)

    # A supervisor releases it; Wang claims it and accepts: the claim ends with the draft.
    lead.get(f"/console/tickets/{tid}")
    lead.post(f"/console/tickets/{tid}/release")
    wang.post(f"/console/tickets/{tid}/claim")
    wang.post(f"/console/tickets/{tid}/accept", {"version": version(hotline, tid)})
    t = ticket(hotline, tid)
    assert (t.status, t.claimed_by) == ("registered", None)
    claims = [
        (a, act) for a, act, t_id, _ in audit_log(hotline) if act.endswith(("claim", "release"))
    ]
    assert claims == [
        ("user:operator", "ticket.claim"),
        ("user:supervisor", "ticket.release"),
        ("user:wang", "ticket.claim"),
    ]


def test_a_claim_lapses_after_claim_minutes(app: Flask, hotline: Hotline) -> None:
    tid = draft(hotline)
    create_user(hotline, SETUP, "wang", PASSWORD, "operator")
    li = browser(app, "operator")
    li.get(f"/console/tickets/{tid}")
    li.post(f"/console/tickets/{tid}/claim")
    hotline.clock.advance(minutes=hotline.settings.console.claim_minutes + 1)  # type: ignore[attr-defined]
    wang = browser(app, "wang")  # signed in now: an idle session would have timed out
    assert "处理中" not in wang.get("/console/queue").get_data(as_text=True)
    wang.post(f"/console/tickets/{tid}/claim")
    assert ticket(hotline, tid).claimed_by == "wang"


# ---- duplicates, corrections, the transcript that comes later ----------------------------


def test_the_original_is_picked_from_similar_tickets_and_duplicates_have_their_own_status(
    app: Flask, hotline: Hotline
) -> None:
    first = draft(hotline)
    hotline.clock.advance(hours=2)  # type: ignore[attr-defined]
    second = draft(hotline, NOISE.replace("两点", "三点"))
    court = draft(hotline, "我要起诉我的房东他不退押金", line="12345", digits="")
    op = browser(app, "operator")
    page = op.get(f"/console/tickets/{second}").get_data(as_text=True)
    number = ticket(hotline, first).number
    # The first call is offered (and chosen) as the original, with how alike it is.
    pick = re.search(
        rf'<input type="radio" name="original" id="orig-{first}" value="{number}" checked', page
    )
    assert pick is not None and re.search(r"<td>\d+%</td>", page)
    r = op.post(
        f"/console/tickets/{second}/duplicate",
        {"version": version(hotline, second), "original": number},
        follow_redirects=True,
    )
    assert "已标记为重复件" in flashes(r.get_data(as_text=True))
    op.post(
        f"/console/tickets/{court}/reject",
        {"version": version(hotline, court), "reason": "请向法院起诉"},
    )
    assert (ticket(hotline, second).status, ticket(hotline, court).status) == (
        "duplicate",
        "rejected",
    )
    queue = op.get("/console/queue?status=duplicate").get_data(as_text=True)
    assert rows(queue) == [second] and "重复件" in queue


def test_the_statement_is_corrected_with_the_original_kept_and_contact_fields(
    app: Flask, hotline: Hotline
) -> None:
    tid = draft(hotline)
    drafted = ticket(hotline, tid).statement
    lead = browser(app, "supervisor")
    lead.get(f"/console/tickets/{tid}")
    fields = {
        "version": version(hotline, tid),
        "category": "投诉",
        "department": "生态环境局",
        "summary": "烧烤店夜间噪音",
        "statement": "我要投诉青年路烧烤店每天晚上噪音扰民到凌晨两点",
        "caller_name": "张女士",
        "callback_number": "0871-6512 3456",
    }
    page = lead.post(f"/console/tickets/{tid}/edit", fields, follow_redirects=True).get_data(
        as_text=True
    )
    t = ticket(hotline, tid)
    assert (t.statement, t.statement_original) == (fields["statement"], drafted)
    assert (t.caller_name, t.callback_number) == ("张女士", "087165123456")
    assert f"原始诉求（修改前）：{drafted}" in page and "087165123456" in page
    change = next(d for _, act, _, d in audit_log(hotline) if act == "ticket.update")["changes"]
    assert change["statement"] == {"old": drafted, "new": fields["statement"]}

    # An operator sees the call-back number masked, and saving without typing one keeps it.
    op = browser(app, "operator")
    page = op.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "087165123456" not in page and "087*****3456" in page
    op.post(
        f"/console/tickets/{tid}/edit",
        {**fields, "version": version(hotline, tid), "callback_number": "", "summary": "夜间噪音"},
    )
    t = ticket(hotline, tid)
    assert (t.summary, t.callback_number) == ("夜间噪音", "087165123456")
    bad = op.post(
        f"/console/tickets/{tid}/edit",
        {**fields, "version": version(hotline, tid), "callback_number": "打给我"},
        follow_redirects=True,
    )
    assert "回电号码只能是数字" in flashes(bad.get_data(as_text=True))


def test_the_transcript_that_arrives_later_is_served_to_the_waiting_page(
    app: Flask, hotline: Hotline
) -> None:
    step = hotline.calls.start(
        provider="sim", provider_call_id="late", from_number=CALLER, to_number="12345"
    )
    with hotline.db.session() as s:
        call = s.get_one(Call, step.call_id)
        store_recording(hotline, s, call, "r-late", data=b"RIFF", audio_format="wav")
        tid = create_draft(hotline, s, call).id
    op = browser(app, "operator")
    page = op.get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert 'data-pending="1"' in page and "无需刷新" in page
    assert op.get(f"/console/tickets/{tid}/state").get_json()["transcription"] == "pending"
    with hotline.db.session() as s:
        call = s.get_one(Call, step.call_id)
        rec = store_recording(hotline, s, call, "r-late", data=b"RIFF", audio_format="wav")
        add_transcript(
            hotline, s, rec, text="我家 楼下 路灯 坏 了", model="vosk-test", confidence=0.9
        )
    state = op.get(f"/console/tickets/{tid}/state").get_json()
    assert state["transcription"] == "done" and "路灯" in state["card"]
    assert state["version"] == version(hotline, tid) and "路灯" in state["fields"]["statement"]


# ---- Chinese throughout -------------------------------------------------------------


def test_error_pages_speak_chinese(app: Flask, hotline: Hotline) -> None:
    op = browser(app, "operator")
    r = op.get("/console/tickets/99999999")
    assert r.status_code == 404 and "找不到页面" in r.get_data(as_text=True)
    r = op.get("/console/no-such-page")
    assert r.status_code == 404 and "找不到页面" in r.get_data(as_text=True)
    r = op.get("/console/campaigns")
    assert r.status_code == 403 and "没有权限" in r.get_data(as_text=True)
    r = op.client.get("/console/tickets/1/accept")
    assert r.status_code == 405 and "操作方式不对" in r.get_data(as_text=True)
    for r in (op.get("/console/tickets/99999999"), op.get("/console/campaigns")):
        assert "this needs" not in r.get_data(as_text=True) and "Not Found" not in r.get_data(
            as_text=True
        )
    r = browser(app, "supervisor").get("/console/reports?from=yesterday")
    assert r.status_code == 400 and "请求无效" in r.get_data(as_text=True)
    assert "表单已过期" not in r.get_data(as_text=True)  # only a refused form says so
    # The API keeps its JSON errors.
    assert op.client.get("/api/tickets/x").mimetype == "application/json"


# ---- campaigns ---------------------------------------------------------------------


def completed_tickets(hotline: Hotline, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        tid = draft(hotline)
        complete(hotline, SETUP, tid, "已协调城管执法")
        ids.append(tid)
    return ids


def test_a_campaign_is_created_started_paused_and_resumed_from_the_console(
    app: Flask, hotline: Hotline
) -> None:
    completed_tickets(hotline, 2)
    lead = browser(app, "supervisor")
    lead.get("/console/campaigns")
    r = lead.post(
        "/console/campaigns",
        {"name": "11月第4周回访", "from": "2026-11-23", "to": "2026-11-23"},
        follow_redirects=True,
    )
    page = r.get_data(as_text=True)
    assert "已创建回访活动 1：计划 2 张工单" in flashes(page)
    row = page[page.index('<tr id="c-1">') :].split("</tr>")[0]
    assert '<td class="status" data-status="created">未开始</td>' in row
    assert '<td class="response">—</td>' in row and "0.0%" not in row  # no call yet
    assert 'data-verb="start"' in row and 'data-verb="resume"' not in row
    # 继续 is not for a campaign that never ran: it starts, audited as its start.
    r = lead.post("/console/campaigns/1/resume", follow_redirects=True)
    assert "回访活动 1 已继续" in flashes(r.get_data(as_text=True))
    lead.post("/console/campaigns/1/pause")
    r = lead.post("/console/campaigns/1/start", follow_redirects=True)
    assert "回访活动 1 已暂停，不能开始" in flashes(r.get_data(as_text=True))
    page = lead.post("/console/campaigns/1/resume", follow_redirects=True).get_data(as_text=True)
    assert "进行中" in page
    actions = [act for _, act, _, _ in audit_log(hotline) if act.startswith("campaign")]
    assert actions == ["campaign.create", "campaign.start", "campaign.pause", "campaign.resume"]


def test_a_campaign_from_an_uploaded_list(app: Flask, hotline: Hotline) -> None:
    ids = completed_tickets(hotline, 2)
    numbers = [ticket(hotline, i).number for i in ids]
    body = f"工单号,电话\n{numbers[0]},13800138000\n{numbers[1]},not-a-phone\n"
    lead = browser(app, "supervisor")
    lead.get("/console/campaigns")
    r = lead.post(
        "/console/campaigns",
        {"name": "名单回访", "list": (io.BytesIO(body.encode("utf-8-sig")), "list.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    shown = flashes(r.get_data(as_text=True))
    assert "已创建回访活动 1：计划 1 张工单" in shown
    assert any("1 行未计划（第 3 行）" in f for f in shown)


def test_the_unsatisfied_reason_is_on_the_ticket_the_api_and_the_campaign(
    app: Flask, hotline: Hotline
) -> None:
    tid = completed_tickets(hotline, 1)[0]
    cid, _ = create_campaign(hotline, SETUP, "11月回访")
    step = hotline.calls.start(
        provider="sim", provider_call_id="survey-1", from_number="12345", to_number=CALLER
    )
    reason = "路边的烧烤店还在营业晚上照样吵有事打13912345678"
    with hotline.db.session() as s:
        attempt = s.scalars(select(SurveyAttempt)).one()
        attempt.status, attempt.call_id = "done", step.call_id
        record_score(s, {"attempt_id": attempt.id, "score": "unsatisfied"}, hotline.clock.now())
        rec = store_recording(
            hotline, s, s.get_one(Call, step.call_id), "reason-1", data=b"RIFF", audio_format="wav"
        )
        add_transcript(hotline, s, rec, text=reason, model="vosk-test")
    with hotline.db.read() as s:
        shown = to_dict(s.get_one(Ticket, tid))
    assert shown["unsatisfied_reasons"] == [reason.replace("13912345678", "139****5678")]
    page = browser(app, "supervisor").get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "不满意原因" in page and "晚上照样吵" in page and "13912345678" in page
    page = browser(app, "operator").get(f"/console/tickets/{tid}").get_data(as_text=True)
    assert "晚上照样吵" in page and "13912345678" not in page
    page = browser(app, "supervisor").get("/console/campaigns").get_data(as_text=True)
    assert f'id="reasons-{cid}"' in page and "晚上照样吵" in page
    with api_rig(hotline) as rig:
        number = ticket(hotline, tid).number
        for role, said in (("operator", shown["unsatisfied_reasons"]), ("supervisor", [reason])):
            r = rig.call("GET", f"/api/tickets/{number}", role)
            assert r.get_json()["unsatisfied_reasons"] == said
        # The API's campaign view lists them as the console's campaign report does.
        r = rig.call("GET", f"/api/campaigns/{cid}", "supervisor")
        assert r.status_code == 200
        assert [(x["ticket"], x["text"]) for x in r.get_json()["unsatisfied_reasons"]] == [
            (number, reason)
        ]


# ---- reports and exports ---------------------------------------------------------------


def test_exports_keep_full_numbers_as_text_and_formulas_as_plain_strings(
    app: Flask, hotline: Hotline
) -> None:
    tid = draft(hotline)
    lead = browser(app, "supervisor")
    lead.get(f"/console/tickets/{tid}")
    lead.post(
        f"/console/tickets/{tid}/edit",
        {
            "version": version(hotline, tid),
            "category": "投诉",
            "department": "公安局",
            "summary": "=1+1",
        },
    )
    with hotline.db.session() as s:
        s.get_one(Ticket, tid).caller_number = "087165123456"
    text = lead.get("/console/queue/export.csv").data.decode("utf-8-sig")
    assert '"=""087165123456"""' in text  # Excel reads ="0871..." as text: the 0 stays
    assert "'=1+1" in text
    assert re.search(r"2026-11-23 \d\d:\d\d", text)  # times with the year
    wb = load_workbook(io.BytesIO(lead.get("/console/queue/export.xlsx").data))
    cells = {c.value: c.data_type for c in wb.active[2]}
    assert cells["=1+1"] == "s" and cells["087165123456"] == "s"


def test_the_complaint_words_leave_out_times_fillers_and_places(
    app: Flask, hotline: Hotline
) -> None:
    for text in (
        "我要投诉青年路的烧烤店早上也开不管怎么说都不听",
        "投诉青年路烧烤店早上油烟很大",
        "投诉青年路烧烤店早上噪音不管",
    ):
        draft(hotline, text, line="12345", digits="2")
    page = browser(app, "supervisor").get("/console/reports?from=2026-11-23&to=2026-11-23")
    words = page.get_data(as_text=True).split('id="chart-keywords"')[1].split("</section>")[0]
    assert "烧烤店" in words
    for noise in ("早上", "不管", "青年"):
        assert f"<td>{noise}</td>" not in words


def test_a_claim_holds_against_every_door(hotline: Hotline) -> None:
    """The claim is the service's rule: the API, the CLI and other users are refused alike."""
    from ivr.services import Actor, Conflict, claims
    from ivr.services import tickets as service

    tid = draft(hotline)
    claims.claim(hotline, Actor.user("li"), tid)
    for other in (Actor.user("wang"), Actor.api("platform"), Actor.cli()):
        with pytest.raises(Conflict, match="claimed by li"):
            service.accept(hotline, other, tid)
    with pytest.raises(Conflict, match="only a supervisor"):
        claims.release(hotline, Actor.user("wang"), tid)
    assert service.accept(hotline, Actor.user("li"), tid).changes["status"]["new"] == "registered"
    assert ticket(hotline, tid).claimed_by is None


def test_the_survey_report_file_has_chinese_headers(hotline: Hotline) -> None:
    from ivr.reports.surveys import report, to_csv

    header = to_csv(report(hotline, "department")).splitlines()[0]
    assert header == "分组,回访工单,呼叫次数,满意,基本满意,不满意,未评价,满意率,回复率"
