"""Privacy and sessions as people see them, in headless Chromium against the real app:
an operator's draft page with every number masked (spoken ones in the transcript too) and
no page breaking under the Content-Security-Policy; an admin issuing and revoking an API
token; a copied session dying at sign-out. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from ivr.services.accounts import create_user

from .consolekit import SETUP
from .test_console_browser import TIMEOUT_MS, Site, browser, shot, site  # noqa: F401
from .test_privacy_masking import MOBILE, SECRETS, digits_seen, seed

PASSWORD = "privacy-pass-1"
SIZES = {"1366": {"width": 1366, "height": 768}, "1920": {"width": 1920, "height": 1080}}


@pytest.fixture
def people(site: Site) -> Iterator[Site]:  # noqa: F811
    for role in ("operator", "supervisor", "admin"):
        create_user(site.hotline, SETUP, role, PASSWORD, role)
    yield site


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("form.signout")).to_be_visible()


def csp_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            errors.append(msg.text)

    page.on("console", on_console)
    return errors


@pytest.mark.parametrize("size", sorted(SIZES))
def test_an_operator_sees_every_number_masked(
    people: Site,
    browser: Browser,  # noqa: F811
    size: str,
) -> None:
    s = seed(people.hotline)
    page = browser.new_page(viewport=SIZES[size])
    page.set_default_timeout(TIMEOUT_MS)
    errors = csp_errors(page)
    sign_in(page, people.base, "operator")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")  # queue.js runs
    expect(page.locator("a.export")).to_have_count(0)  # exports are for supervisors
    queue_text = page.locator("main").inner_text()
    assert "158****2222" in queue_text
    page.goto(f"{people.base}/console/tickets/{s.ticket_id}")
    transcript = page.locator("#transcript").inner_text()
    assert "幺三九****五六七八" in transcript.replace(" ", "")
    text = page.locator("body").inner_text()
    assert [n for n in SECRETS if n in digits_seen(text)] == []
    shot(page, f"privacy-operator-draft-{size}")
    assert errors == []


def test_pages_keep_working_under_the_security_policy(
    people: Site,
    browser: Browser,  # noqa: F811
) -> None:
    s = seed(people.hotline)
    page = browser.new_page(viewport=SIZES["1366"])
    page.set_default_timeout(TIMEOUT_MS)
    errors = csp_errors(page)
    sign_in(page, people.base, "supervisor")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")
    page.goto(f"{people.base}/console/tickets/{s.ticket_id}")
    assert MOBILE in digits_seen(page.locator("body").inner_text())  # supervisors see it
    page.goto(f"{people.base}/console/reports")
    expect(page.locator("svg").first).to_be_visible()
    shot(page, "privacy-supervisor-reports")
    assert errors == []
    # and nobody can frame the console
    framed = browser.new_page()
    framed.set_content(f'<iframe id="f" src="{people.base}/console/login"></iframe>')
    framed.wait_for_timeout(500)
    frame = framed.frame_locator("#f")
    expect(frame.locator("input[name=username]")).to_have_count(0)


def test_an_admin_issues_and_revokes_a_token(
    people: Site,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page(viewport=SIZES["1366"])
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, people.base, "admin")
    page.click("text=用户")
    page.select_option("#issue-token select[name=user]", label="supervisor")
    page.fill("#issue-token input[name=name]", "province")
    page.fill("#issue-token input[name=expires_days]", "30")
    page.click("#issue-token button[type=submit]")
    token = page.locator("#new-token code").inner_text()
    assert token.startswith("ivr_")
    shot(page, "privacy-token-issued")
    # Closed at the end: a kept-alive connection would hold the server open at teardown.
    with requests.Session() as api:
        api.trust_env = False
        auth = {"Authorization": f"Bearer {token}"}
        assert api.get(people.base + "/api/tickets", headers=auth, timeout=10).status_code == 200
        page.goto(people.base + "/console/users")
        row = page.locator("table.tokens tr", has_text="province")
        expect(row).to_contain_text("有效")
        expect(row).not_to_contain_text("从未使用")  # the last use is shown
        row.locator("button", has_text="撤销").click()
        expect(page.locator(".flash")).to_have_text("已撤销令牌 province")
        expect(page.locator("table.tokens tr", has_text="province")).to_contain_text("已撤销")
        shot(page, "privacy-token-revoked")
        assert api.get(people.base + "/api/tickets", headers=auth, timeout=10).status_code == 401


def test_a_copied_session_ends_at_sign_out(
    people: Site,
    browser: Browser,  # noqa: F811
) -> None:
    mine = browser.new_context(viewport=SIZES["1366"])
    page = mine.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, people.base, "operator")
    stolen = browser.new_context()
    stolen.add_cookies(mine.cookies())
    thief = stolen.new_page()
    thief.goto(people.base + "/console/queue")
    expect(thief.locator("form.signout")).to_be_visible()
    page.click("form.signout button")
    expect(page.locator("input[name=username]")).to_be_visible()
    thief.goto(people.base + "/console/queue")
    expect(thief.locator("input[name=username]")).to_be_visible()  # sent to sign in
    shot(thief, "privacy-copied-session-signed-out")
