"""The loop in headless Chromium against the real app served by waitress: a supervisor
confirms a 不满意 for re-handling (复核), the ticket is completed again, supervised (督办),
and a manual callback is recorded from the callback list (人工回访) and counted."""

from __future__ import annotations

from sqlalchemy import select

from ivr.reports.surveys import report, total
from ivr.services import Actor
from ivr.services import tickets as service
from ivr.services.campaigns import create_campaign
from ivr.store import SurveyAttempt, Ticket
from ivr.surveys.outcomes import record_score

from .test_console_browser import (  # noqa: F401  (fixtures)
    PASSWORD,
    TIMEOUT_MS,
    Browser,
    Site,
    browser,
    expect,
    shot,
    site,
)

SEEDER = Actor.system("test")
CALLER = "13800138000"


def unsatisfied_ticket(web: Site) -> tuple[str, int]:
    """A completed ticket whose caller pressed 不满意 (and 未解决) on the survey call."""
    out = web.ivr(
        "simulate", "--line", "12345", "--from", CALLER, "--digits", "2",
        "--text", "我要投诉五华区人民路的烧烤店每天晚上噪音扰民",
    )  # fmt: skip
    app = web.hotline
    with app.db.read() as s:
        t = s.scalars(select(Ticket)).one()
        number, tid = t.number, t.id
    assert number in out
    service.complete(app, SEEDER, number, "已责令整改")
    campaign_id, planned = create_campaign(app, SEEDER, "回访")
    assert planned == 1
    with app.db.session() as s:
        a = s.scalars(select(SurveyAttempt).where(SurveyAttempt.campaign_id == campaign_id)).one()
        a.status = "done"
        record_score(
            s,
            {"attempt_id": a.id, "score": "unsatisfied", "resolved": "unresolved"},
            app.clock.now(),
        )
    return number, tid


def test_review_rehandle_supervise_and_call_back_in_the_browser(
    site: Site,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    site.ivr("users", "add", "lead", "--role", "supervisor", "--password-stdin", stdin=PASSWORD)
    number, tid = unsatisfied_ticket(site)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(site.base + f"/console/tickets/{tid}")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#status")).to_have_text("待复核")
    shot(page, "loop-1-review")

    # 复核: the complaint is well founded; the ticket goes back for re-handling.
    page.fill("#review-form input[name=reason]", "经核实诉求属实")
    page.click("#review-confirm")
    expect(page.locator(".flash")).to_have_text("已确认重办")
    expect(page.locator("#status")).to_have_text("重办")

    # 督办 by the supervisor while it is re-handled; the 督办 list shows it and why.
    page.fill("#supervise-form input[name=reason]", "群众反映强烈，限期办结")
    page.click("#supervise")
    expect(page.locator(".flash")).to_have_text("已督办")
    page.goto(site.base + "/console/supervision")
    row = page.locator("#supervision tbody tr", has_text=number)
    expect(row).to_contain_text("人工督办")
    expect(row).to_contain_text("群众反映强烈，限期办结")
    shot(page, "loop-2-supervision")

    # The callback list: 不满意 and 督办; a person records what the caller said.
    page.goto(site.base + "/console/callbacks")
    row = page.locator("#callbacks tbody tr", has_text=number)
    expect(row).to_contain_text("不满意、督办")
    expect(row).to_contain_text("138 0013 8000")  # supervisors see the whole number
    row.locator("select[name=score]").select_option("basically_satisfied")
    row.locator("select[name=resolved]").select_option("resolved")
    row.locator("input[name=note]").fill("市民表示烧烤店已停业")
    row.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_have_text("已记录回访结果")
    page.goto(site.base + "/console/callbacks")
    expect(page.locator("#callbacks tbody tr", has_text=number)).to_have_count(0)
    shot(page, "loop-3-callbacks")

    t = total(report(site.hotline))
    assert (t.tickets, t.unsatisfied, t.basically_satisfied) == (1, 0, 1)
    with site.hotline.db.read() as s:
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        assert (ticket.status, ticket.survey_resolved) == ("rehandle", "resolved")
