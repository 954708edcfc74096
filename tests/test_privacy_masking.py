"""Citizens' phone numbers as operators get them: masked in every response an operator's
console session or API token can get (every route walked), written or spoken; ETags
that give nothing away; no 500 for out-of-range ids and dates on any route."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from ivr.app import Hotline
from ivr.calls.recordings import add_transcript, store_recording
from ivr.intake.drafts import create_draft
from ivr.kb.importer import ArticleData
from ivr.phones import mask_text
from ivr.privacy import redact, redact_words
from ivr.services.accounts import issue_token
from ivr.services.campaigns import create_campaign
from ivr.services.kb import save_article
from ivr.services.tickets import complete, update
from ivr.store import Call, Ticket

from .consolekit import SETUP, Browser, browser, console_app

CALLER = "15811112222"
MOBILE = "13698761234"
LANDLINE = "0871-65987654"
SPOKEN = "幺三七五五五六六七七八"  # 13755566778
STATEMENT = (
    f"我的手机{MOBILE}，家里电话{LANDLINE}，或者打{SPOKEN}，小区楼下烧烤店噪音扰民到凌晨两点"
)
# A number said over several recognized words, as Vosk returns them.
SPOKEN_WORDS = ["我", "的", "电话", "幺三九", "一二三四", "五六", "七八", "烧烤店", "噪音"]
SECRETS = ["13698761234", "087165987654", "65987654", "13755566778", "13912345678", CALLER]
_SPOKEN_DIGITS = dict(zip("零〇洞幺一二两三四五六七拐八九", "000112234567789", strict=True))


def digits_seen(body: str) -> str:
    """The response as a reader could piece numbers together: spoken digits as digits,
    the spaces and hyphens inside numbers gone."""
    text = "".join(_SPOKEN_DIGITS.get(ch, ch) for ch in body)
    return re.sub(r"(?<=\d)[\s\-]+(?=\d)", "", text)


def leaked(r: TestResponse) -> list[str]:
    body = r.get_data(as_text=True)
    if r.mimetype == "application/json":  # \u escapes would hide spoken digits
        body = json.dumps(json.loads(body), ensure_ascii=False)
    if r.mimetype == "text/html":  # as a reader sees it: words in spans run together
        body += " " + re.sub(r"<[^>]+>", "", body)
    if r.headers.get("ETag"):
        body += " " + r.headers["ETag"]
    seen = digits_seen(body)
    return [n for n in SECRETS if n in seen]


@dataclass
class Seeded:
    ticket_id: int
    number: str
    recording_id: int
    campaign_id: int
    completed_number: str
    article_id: int


def seed(hotline: Hotline) -> Seeded:
    step = hotline.calls.start(
        provider="sim", provider_call_id="pii-1", from_number=CALLER, to_number="12345"
    )
    with hotline.db.session() as s:
        call = s.get(Call, step.call_id)
        assert call is not None
        rec = store_recording(hotline, s, call, "pii-r1", data=b"RIFF", audio_format="wav")
        add_transcript(
            hotline,
            s,
            rec,
            text=STATEMENT,
            model="vosk-test",
            words=[{"word": w, "conf": 0.9} for w in SPOKEN_WORDS],
            confidence=0.9,
        )
        recording_id = rec.id
    with hotline.db.session() as s:
        call = s.get(Call, step.call_id)
        assert call is not None
        t = create_draft(hotline, s, call)
        ticket_id, number = t.id, t.number
    # a supervisor's correction puts numbers into the history too
    update(hotline, SETUP, ticket_id, {"summary": f"回电{MOBILE}或{SPOKEN}"})
    other = create_draft_from(hotline, "pii-2")
    complete(hotline, SETUP, other, f"已回电{MOBILE}，座机{LANDLINE}")
    campaign_id, _ = create_campaign(hotline, SETUP, "回访")
    card = ArticleData("社会保障卡补办", "请先挂失，再到银行网点补办。", "", ("社保卡", "补办"))
    article_id = save_article(hotline, SETUP, card)
    return Seeded(ticket_id, number, recording_id, campaign_id, other, article_id)


def create_draft_from(hotline: Hotline, call_id: str) -> str:
    from ivr.calls.simulate import simulate_inbound

    sim = simulate_inbound(hotline, line="12315", caller=CALLER, digits="2", text=STATEMENT)
    assert sim.ticket is not None
    return str(sim.ticket["number"])


@pytest.fixture
def app(hotline: Hotline) -> Iterator[Flask]:
    # The live queue answers one check and ends (as for tabs beyond the stream limit).
    console = hotline.settings.console.model_copy(update={"streams_per_process": 0})
    object.__setattr__(
        hotline, "settings", hotline.settings.model_copy(update={"console": console})
    )
    with console_app(hotline) as app:
        yield app


def _values(s: Seeded) -> dict[str, list[Any]]:
    return {
        "ticket_id": [s.ticket_id],
        "recording_id": [s.recording_id],
        "campaign_id": [s.campaign_id],
        "article_id": [s.article_id],
        "number": [s.number, s.completed_number],
        "name": ["volumes", "overdue", "keywords", "satisfaction"],
        "fmt": ["csv", "xlsx"],
        "filename": ["console.css", "queue.js"],
        "verb": ["pause"],
        "clips": ["0081d04bc37ef708"],
        "user_id": [1],
        "token_id": [1],
    }


QUERIES = ["", "?status=all", "?status=completed", "?urgent=0", "?cursor=0"]


def every_get(app: Flask, s: Seeded) -> list[str]:
    """Every GET path of the app, with the seeded ids filled in, and a few queries."""
    values, paths = _values(s), []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        combos: list[dict[str, Any]] = [{}]
        for arg in rule.arguments:
            combos = [{**c, arg: v} for c in combos for v in values[arg]]
        for args in combos:
            path = rule.build(args, append_unknown=False)
            assert path is not None
            paths += [path[1] + q for q in QUERIES]
    return sorted(set(paths))


def scan(get: Any, paths: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        r = get(path)
        assert r.status_code < 500, (path, r.status_code)
        if r.mimetype.startswith("audio/"):
            continue  # the caller's own voice: an operator must hear the statement
        bad = leaked(r)
        if bad:
            found[path] = bad
    return found


def test_every_response_to_an_operator_session_masks_numbers(app: Flask, hotline: Hotline) -> None:
    s = seed(hotline)
    op = browser(app, "operator")
    paths = every_get(app, s)
    assert any(p.startswith("/console/tickets/") for p in paths)
    assert any(p.startswith("/console/queue/stream") for p in paths)
    assert scan(lambda p: op.client.get(p), paths) == {}
    # and a supervisor sees the numbers, so the scan finds what it looks for
    sup = browser(app, "supervisor")
    page = sup.get(f"/console/tickets/{s.ticket_id}")
    assert {MOBILE, "13755566778", "13912345678", CALLER} <= set(leaked(page))


def test_operator_ticket_page_masks_spoken_digits_in_transcript_words(
    app: Flask, hotline: Hotline
) -> None:
    s = seed(hotline)
    page = browser(app, "operator").get(f"/console/tickets/{s.ticket_id}").get_data(as_text=True)
    transcript = re.sub(r"<[^>]+>", "|", page.split('id="transcript">')[1].split("</p>")[0])
    assert "|幺三九||****||五六||七八|" in transcript
    assert SPOKEN not in page and "幺三七****六七七八" in page  # the statement, spoken


def test_every_response_to_an_operator_token_masks_numbers(app: Flask, hotline: Hotline) -> None:
    s = seed(hotline)
    token = issue_token(hotline, SETUP, "operator", "platform-op")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    paths = [p for p in every_get(app, s) if p.startswith("/api/")]
    assert f"/api/tickets/{s.number}" in paths
    assert scan(lambda p: client.get(p, headers=auth), paths) == {}
    # what an operator may change answers with the ticket too
    r = client.patch(f"/api/tickets/{s.number}", json={"urgent": True}, headers=auth)
    assert r.status_code == 200 and leaked(r) == []
    r = client.post(f"/api/tickets/{s.number}/accept", headers=auth)
    assert r.status_code == 200 and leaked(r) == []
    body = r.get_json()
    assert body["statement"].startswith("我的手机136****1234")
    assert body["caller"] == "158****2222"


def test_the_etag_gives_no_hidden_digit_away(app: Flask, hotline: Hotline) -> None:
    """The issue's reproduction: the masked caller digits brute-forced against the ETag."""
    s = seed(hotline)
    sup_token = issue_token(hotline, SETUP, "supervisor", "platform-sup")
    op_token = issue_token(hotline, SETUP, "operator", "platform-op")
    client = app.test_client()
    r = client.get(f"/api/tickets/{s.number}", headers={"Authorization": f"Bearer {op_token}"})
    etag = r.headers["ETag"].strip('"')
    shown = r.get_json()
    shown.pop("earlier_tickets")
    hits = []
    for middle in range(10_000):
        guess = {**shown, "caller": f"158{middle:04d}2222"}
        text = json.dumps(guess, sort_keys=True, ensure_ascii=False)
        if hashlib.sha256(text.encode()).hexdigest()[:20] == etag:
            hits.append(middle)
    assert hits == []
    # the same ticket has the same ETag for every role, and If-Match still works with it
    full = client.get(f"/api/tickets/{s.number}", headers={"Authorization": f"Bearer {sup_token}"})
    assert full.headers["ETag"] == r.headers["ETag"]
    stale = client.patch(
        f"/api/tickets/{s.number}",
        json={"urgent": True},
        headers={"Authorization": f"Bearer {op_token}", "If-Match": '"0.0"'},
    )
    assert stale.status_code == 412
    ok = client.patch(
        f"/api/tickets/{s.number}",
        json={"urgent": True},
        headers={"Authorization": f"Bearer {op_token}", "If-Match": r.headers["ETag"]},
    )
    assert ok.status_code == 200 and ok.headers["ETag"] != r.headers["ETag"]


def test_an_operators_masked_summary_sent_back_does_not_overwrite_it(
    app: Flask, hotline: Hotline
) -> None:
    s = seed(hotline)
    op: Browser = browser(app, "operator")
    page = op.get(f"/console/tickets/{s.ticket_id}").get_data(as_text=True)
    shown_summary = re.search(r'name="summary" maxlength="200" value="([^"]*)"', page)
    version = re.search(r'name="version" value="([^"]+)"', page)
    assert shown_summary and version and "136****1234" in shown_summary.group(1)
    form = {"version": version.group(1), "summary": shown_summary.group(1), "urgent": "on"}
    with hotline.db.read() as db:
        t = db.get(Ticket, s.ticket_id)
        assert t is not None
        form.update({"category": t.category, "department": t.department, "address": ""})
    assert op.post(f"/console/tickets/{s.ticket_id}/edit", form).status_code == 303
    with hotline.db.read() as db:
        t = db.get(Ticket, s.ticket_id)
        assert t is not None and t.urgent and MOBILE in t.summary


def test_masking_finds_numbers_however_they_are_written_or_said() -> None:
    assert mask_text(f"电话{MOBILE}") == "电话136****1234"
    assert mask_text("139 1234 5678") == "139 **** 5678"
    assert mask_text(LANDLINE) == "087*-****7654"
    assert mask_text(SPOKEN) == "幺三七****六七七八"
    assert mask_text("１３６９８７６１２３４") == "１３６****１２３４"
    # ticket numbers, dates, times and identifiers are not phone numbers
    for text in [
        "12345-20261122-00042",
        "2026-11-22",
        "2026-11-23T02:00:00+00:00",
        "ivr_a13698761234",
    ]:
        assert mask_text(text) == text
    assert redact_words(SPOKEN_WORDS, sees_phone=False)[3:7] == ["幺三九", "****", "五六", "七八"]
    assert redact({"caller": "087112345", "n": [MOBILE]}, sees_phone=False) == {
        "caller": "087**2345",
        "n": ["136****1234"],
    }
    assert redact({"caller": "087112345"}, sees_phone=True) == {"caller": "087112345"}


HUGE = "99999999999999999999"


@pytest.mark.parametrize("role", ["operator", "supervisor"])
def test_out_of_range_ids_and_dates_are_refused_not_500(
    app: Flask, hotline: Hotline, role: str
) -> None:
    s = seed(hotline)
    b = browser(app, role)
    token = issue_token(hotline, SETUP, role, f"t-{role}")
    auth = {"Authorization": f"Bearer {token}"}
    dates = ["from=0001-01-01", "from=9999-12-01", "to=0001-01-01", "from=0001-01-01&to=0001-01-05"]
    dates += ["from=9999-12-01&to=9999-12-31", "created_from=0001-01-01", "created_to=9999-12-31"]
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/console", "/api")) or rule.endpoint == "console.logout":
            continue  # Twilio's webhooks answer Twilio only (tests/test_twilio_security.py)
        values = {
            a: [HUGE] if a not in ("fmt", "name", "verb", "filename", "clips") else v
            for a, v in _values(s).items()
        }
        args = {a: values[a][0] for a in rule.arguments}
        try:
            path = rule.build(args, append_unknown=False)
        except Exception:  # the converter refuses the huge id: so does routing
            path = None
        paths = [path[1]] if path else []
        if not rule.arguments:
            paths += [f"{rule.rule}?{q}" for q in dates]
        for p in paths:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                if p.startswith("/api/"):
                    r = app.test_client().open(p, method=method, headers=auth, json={})
                    assert r.status_code < 500, (method, p, r.status_code)
                    assert r.status_code < 400 or "error" in r.get_json(), (method, p)
                    r.close()
                else:
                    r = b.client.open(p, method=method, data={"csrf_token": b.csrf})
                    assert r.status_code < 500, (method, p, r.status_code)
                    r.close()
    for p in [f"/console/tickets/{HUGE}", f"/console/recordings/{HUGE}/audio"]:
        assert b.client.get(p).status_code == 404
    for q in ["from=0001-01-01", "from=9999-12-01", "from=0001-01-01&to=0001-01-05"]:
        r = b.client.get(f"/console/reports?{q}")
        assert r.status_code in (400, 403), q
    assert app.test_client().get(f"/api/tickets/{HUGE}", headers=auth).status_code == 404
