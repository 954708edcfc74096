"""The JSON API for the ticket platform: tokens, roles, masking, tickets, campaigns, audit."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlalchemy import select

from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.services.accounts import create_user, revoke_token, update_user
from ivr.store import ApiToken
from webhooks.api.openapi import SPACES

from .apikit import BACKENDS, CALLER, EXPIRED_DRUGS, GAS_LEAK, ApiRig, api_rig, hotline_on
from .consolekit import SETUP


@pytest.fixture
def rig(hotline: Hotline) -> Iterator[ApiRig]:
    with api_rig(hotline) as rig:
        yield rig


def error(resp: Any, status: int, code: str) -> dict[str, Any]:
    """The error body of a refused request, after checking its status and code."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()["error"]
    assert body["code"] == code and body["message"]
    return dict(body)


# -- the document -------------------------------------------------------------


def test_openapi_document_is_valid_and_describes_every_route(rig: ApiRig) -> None:
    resp = rig.call("GET", "/api/openapi.json", role=None)  # public, like any API reference
    assert resp.status_code == 200
    doc = resp.get_json()
    validate(doc)
    routes = {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", str(rule)), method.lower())
        for rule in rig.app.url_map.iter_rules()
        if str(rule).startswith("/api/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == documented
    # What the office configures is what the document offers.
    update = doc["components"]["schemas"]["TicketUpdate"]["properties"]
    assert "城市管理综合执法局" in update["department"]["enum"]
    assert update["category"]["enum"] == ["咨询", "投诉", "求助", "建议", "举报"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_documents_blank_notes_are_the_ones_the_server_refuses() -> None:
    """SOME_TEXT's spaces are exactly str.isspace(): what the document calls blank is
    what the server refuses (ivr.tickets strips notes with str.strip())."""
    spaces = re.compile(f"[{SPACES}]")
    assert all(bool(spaces.fullmatch(chr(c))) == chr(c).isspace() for c in range(0x110000))


# -- who may call ---------------------------------------------------------------

EVERY_ENDPOINT = [
    ("GET", "/api/tickets", None),
    ("GET", "/api/tickets/{n}", None),
    ("PATCH", "/api/tickets/{n}", {"urgent": True}),
    ("POST", "/api/tickets/{n}/accept", None),
    ("POST", "/api/tickets/{n}/duplicate", {"of": "12345-20261123-00001"}),
    ("POST", "/api/tickets/{n}/reject", {"reason": "属于法院职责"}),
    ("POST", "/api/tickets/{n}/complete", {"note": "已处理"}),
    ("GET", "/api/campaigns", None),
    ("GET", "/api/campaigns/1", None),
    ("POST", "/api/campaigns/1/pause", None),
    ("POST", "/api/campaigns/1/resume", None),
]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic b3BlcmF0b3I6cGFzc3dvcmQ=", "Bearer ivr_not-a-token"],
)
def test_requests_without_a_valid_token_are_refused(rig: ApiRig, authorization: str | None) -> None:
    number = rig.draft()
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in EVERY_ENDPOINT:
        resp = rig.call(method, path.format(n=number), role=None, headers=headers, json=body)
        error(resp, 401, "unauthorized")
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert rig.call("GET", f"/api/tickets/{number}").get_json()["status"] == "draft"
    assert [a for _, a, _, _ in rig.audit_log()] == ["ticket.view"]  # refused calls saw nothing


def test_revoked_tokens_and_deactivated_users_are_refused(rig: ApiRig) -> None:
    assert rig.call("GET", "/api/tickets", role="operator").status_code == 200
    assert rig.call("GET", "/api/tickets", role="admin").status_code == 200
    with rig.hotline.db.read() as s:
        tid = s.scalars(select(ApiToken.id).where(ApiToken.name == "platform-operator")).one()
    assert revoke_token(rig.hotline, SETUP, tid) == "platform-operator"
    create_user(rig.hotline, SETUP, "admin-2", "password-123", "admin")  # not the last admin
    update_user(rig.hotline, SETUP, "admin-user", active=False)
    error(rig.call("GET", "/api/tickets", role="operator"), 401, "unauthorized")
    error(rig.call("GET", "/api/tickets", role="admin"), 401, "unauthorized")
    assert rig.call("GET", "/api/tickets", role="supervisor").status_code == 200


def test_operators_may_not_complete_tickets_or_read_campaigns(rig: ApiRig) -> None:
    number = rig.draft()
    assert rig.call("POST", f"/api/tickets/{number}/accept", role="operator").status_code == 200
    body = error(
        rig.call("POST", f"/api/tickets/{number}/complete", json={"note": "已处理"}),
        403,
        "forbidden",
    )
    assert "supervisor" in body["message"]
    error(rig.call("GET", "/api/campaigns", role="operator"), 403, "forbidden")
    error(rig.call("GET", "/api/campaigns/1", role="operator"), 403, "forbidden")
    assert rig.call("GET", f"/api/tickets/{number}").get_json()["status"] == "registered"
    resp = rig.call("POST", f"/api/tickets/{number}/complete", "admin", json={"note": "已处理"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "completed"


def test_phone_numbers_are_masked_unless_the_role_may_see_them(rig: ApiRig) -> None:
    number = rig.draft("我要投诉烧烤店噪音扰民，我的另一个电话是13912345678")
    for role, caller, said in [
        ("operator", "138****8000", "139****5678"),
        ("supervisor", CALLER, "13912345678"),
        ("admin", CALLER, "13912345678"),
    ]:
        one = rig.call("GET", f"/api/tickets/{number}", role).get_json()
        listed = rig.call("GET", "/api/tickets", role).get_json()["items"][0]
        for ticket in (one, listed):
            assert (ticket["caller"], ticket["phone_numbers"]) == (caller, [said])
        patched = rig.call("PATCH", f"/api/tickets/{number}", role, json={"urgent": False})
        assert patched.get_json()["caller"] == caller


# -- tickets ----------------------------------------------------------------------


def test_tickets_are_filtered_and_paged_newest_first(rig: ApiRig, clock: FixedClock) -> None:
    noise = rig.draft()  # 12315 投诉, Monday 2026-11-23
    drugs = rig.draft(EXPIRED_DRUGS, line="12345", digits="")
    clock.advance(days=1)
    gas = rig.draft(GAS_LEAK, line="12345", digits="3")  # urgent, Tuesday
    accepted = rig.draft()
    rig.call("POST", f"/api/tickets/{accepted}/accept")

    def numbers(query: str) -> list[str]:
        resp = rig.call("GET", f"/api/tickets?{query}")
        assert resp.status_code == 200, resp.get_json()
        return [t["number"] for t in resp.get_json()["items"]]

    assert numbers("") == [accepted, gas, drugs, noise]
    assert numbers("status=draft") == [gas, drugs, noise]
    assert numbers("status=registered") == [accepted]
    assert numbers("line=12345") == [gas, drugs]
    assert numbers("category=举报") == [drugs]
    assert numbers("department=燃气公司") == [gas]
    assert numbers("urgent=true") == [gas]
    assert numbers("urgent=false&line=12345") == [drugs]
    assert numbers("created_from=2026-11-24") == [accepted, gas]
    assert numbers("created_to=2026-11-23") == [drugs, noise]
    assert numbers("created_from=2026-11-25") == []
    # Pages of two: every ticket once, and the last page says so.
    first = rig.call("GET", "/api/tickets?limit=2").get_json()
    assert [t["number"] for t in first["items"]] == [accepted, gas]
    rig.draft()  # a new ticket does not shift the pages already handed out
    second = rig.call("GET", f"/api/tickets?limit=2&cursor={first['next_cursor']}").get_json()
    assert [t["number"] for t in second["items"]] == [drugs, noise]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("status=pending", "status"),
        ("line=110", "line"),
        ("category=闲聊", "category"),
        ("urgent=yes", "urgent"),
        ("created_from=2026-13-01", "created_from"),
        ("created_to=23.11.2026", "created_to"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("page=2", "page"),
    ],
)
def test_bad_list_parameters_are_refused_with_the_reason(
    rig: ApiRig, query: str, names: str
) -> None:
    body = error(rig.call("GET", f"/api/tickets?{query}"), 400, "invalid_parameter")
    assert names in body["message"]


def test_unknown_tickets_are_404(rig: ApiRig) -> None:
    for number in ["12345-20990101-00001", "999999", "99999999999999999999", "٣"]:
        error(rig.call("GET", f"/api/tickets/{number}"), 404, "not_found")
        error(rig.call("POST", f"/api/tickets/{number}/accept"), 404, "not_found")


def test_review_flow_update_accept_complete(rig: ApiRig) -> None:
    number = rig.draft()  # 投诉 from 12315: due in 15 working days
    before = rig.call("GET", f"/api/tickets/{number}").get_json()
    assert (before["status"], before["due_date"]) == ("draft", "2026-12-14")

    resp = rig.call(
        "PATCH",
        f"/api/tickets/{number}",
        json={
            "category": "咨询",
            "department": "市场监督管理局",
            "address": "五华区人民中路12号",
            "summary": "  烧烤店夜间噪音  ",
        },
    )
    assert resp.status_code == 200, resp.get_json()
    ticket = resp.get_json()
    assert (ticket["category"], ticket["category_source"]) == ("咨询", "operator")
    assert ticket["department"] == "市场监督管理局"
    assert ticket["summary"] == "烧烤店夜间噪音"
    assert ticket["address"]["district"] == "五华区"
    assert ticket["address"]["text"] == "五华区人民中路12号"
    assert ticket["due_date"] == "2026-11-30"  # 咨询: 5 working days
    cleared = rig.call("PATCH", f"/api/tickets/{number}", json={"address": None}).get_json()
    assert cleared["address"] is None

    accepted = rig.call("POST", f"/api/tickets/{number}/accept").get_json()
    assert accepted["status"] == "registered"
    done = rig.call(
        "POST", f"/api/tickets/{number}/complete", "supervisor", json={"note": "已责令整改"}
    ).get_json()
    assert (done["status"], done["result_note"]) == ("completed", "已责令整改")
    assert done["completed_at"] == "2026-11-23T02:00:00+00:00"


def test_illegal_transitions_are_409_and_change_nothing(rig: ApiRig) -> None:
    number = rig.completed()
    body = error(rig.call("POST", f"/api/tickets/{number}/accept"), 409, "illegal_transition")
    assert "completed" in body["message"]
    error(
        rig.call("PATCH", f"/api/tickets/{number}", json={"urgent": True}),
        409,
        "illegal_transition",
    )
    error(
        rig.call("POST", f"/api/tickets/{number}/complete", "supervisor", json={"note": "再办"}),
        409,
        "illegal_transition",
    )
    out_of_scope = rig.draft("我家楼下的饭店着火了火很大", line="12345", digits="3")
    error(rig.call("POST", f"/api/tickets/{out_of_scope}/accept"), 409, "illegal_transition")
    after = rig.call("GET", f"/api/tickets/{number}").get_json()
    assert (after["status"], after["urgent"], after["result_note"]) == (
        "completed",
        False,
        "已协调城管执法",
    )
    assert [a for _, a, _, _ in rig.audit_log()] == ["ticket.view"]


def test_duplicates_and_out_of_scope_requests_are_closed(rig: ApiRig) -> None:
    original, repeat, again, court = rig.draft(), rig.draft(), rig.draft(), rig.draft()
    resp = rig.call("POST", f"/api/tickets/{repeat}/duplicate", json={"of": original})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["status"], resp.get_json()["duplicate_of"]) == ("duplicate", original)
    # A repeat of a repeat points at the first ticket.
    chained = rig.call("POST", f"/api/tickets/{again}/duplicate", json={"of": repeat}).get_json()
    assert chained["duplicate_of"] == original
    error(
        rig.call("POST", f"/api/tickets/{original}/duplicate", json={"of": original}),
        409,
        "illegal_transition",
    )
    missing = error(
        rig.call("POST", f"/api/tickets/{original}/duplicate", json={"of": "12345-20990101-00009"}),
        404,
        "original_not_found",
    )
    assert missing["details"][0]["field"] == "of"

    reason = "涉及法院判决执行，请向法院反映"
    rejected = rig.call("POST", f"/api/tickets/{court}/reject", json={"reason": reason})
    assert rejected.status_code == 200, rejected.get_json()
    body = rejected.get_json()
    assert (body["status"], body["out_of_scope"], body["result_note"]) == (
        "rejected",
        True,
        reason,
    )
    error(rig.call("POST", f"/api/tickets/{court}/reject", json={"reason": reason}), 409,
          "illegal_transition")  # fmt: skip
    error(rig.call("POST", f"/api/tickets/{original}/reject", json={"reason": " "}), 422,
          "validation_failed")  # fmt: skip
    actions = [a for _, a, _, _ in rig.audit_log()]
    assert actions == ["ticket.duplicate", "ticket.duplicate", "ticket.reject"]


def test_changes_based_on_an_outdated_copy_are_refused(rig: ApiRig) -> None:
    number = rig.draft()
    seen = rig.call("GET", f"/api/tickets/{number}")
    version = seen.headers["ETag"]
    # Someone else changes the ticket meanwhile (with the version they read).
    first = rig.call(
        "PATCH", f"/api/tickets/{number}", json={"urgent": True}, headers={"If-Match": version}
    )
    assert first.status_code == 200 and first.headers["ETag"] != version
    stale = rig.call(
        "PATCH", f"/api/tickets/{number}", json={"summary": "旧"}, headers={"If-Match": version}
    )
    assert "changed" in error(stale, 412, "precondition_failed")["message"]
    error(
        rig.call("POST", f"/api/tickets/{number}/accept", headers={"If-Match": version}),
        412,
        "precondition_failed",
    )
    now = rig.call("GET", f"/api/tickets/{number}")
    unchanged = (now.get_json()["status"], now.get_json()["summary"])
    assert unchanged == ("draft", seen.get_json()["summary"])
    fresh = rig.call(
        "POST", f"/api/tickets/{number}/accept", headers={"If-Match": now.headers["ETag"]}
    )
    assert fresh.status_code == 200
    anyway = rig.call("PATCH", f"/api/tickets/{number}", json={"urgent": False},
                      headers={"If-Match": "*"})  # fmt: skip
    assert anyway.status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "field"),
    [
        ('{"urgent": tru', "application/json", 400, "invalid_json", None),
        ("", "application/json", 400, "invalid_json", None),
        ("urgent=true", "application/x-www-form-urlencoded", 415, "unsupported_media_type", None),
        ('["urgent"]', "application/json", 422, "validation_failed", "body"),
        ("{}", "application/json", 422, "validation_failed", "body"),
        ('{"urgent": "yes"}', "application/json", 422, "validation_failed", "urgent"),
        ('{"urgent": 1}', "application/json", 422, "validation_failed", "urgent"),
        ('{"status": "closed"}', "application/json", 422, "validation_failed", "status"),
        ('{"category": "闲聊"}', "application/json", 422, "validation_failed", "category"),
        ('{"department": null}', "application/json", 422, "validation_failed", "department"),
        ('{"summary": "%s"}' % ("长" * 201), "application/json", 422, "validation_failed",
         "summary"),
        ('{"summary": "a\\u0000b"}', "application/json", 422, "validation_failed", "summary"),
        ('{"address": "\\ud800"}', "application/json", 422, "validation_failed", "address"),
    ],
)  # fmt: skip
def test_bad_update_bodies_are_refused_with_the_reason(
    rig: ApiRig, body: str, content_type: str, status: int, code: str, field: str | None
) -> None:
    number = rig.draft()
    resp = rig.call(
        "PATCH", f"/api/tickets/{number}", data=body, headers={"Content-Type": content_type}
    )
    problem = error(resp, status, code)
    if field is not None:
        assert field in [d["field"] for d in problem["details"]], problem
    assert rig.call("GET", f"/api/tickets/{number}").get_json()["status"] == "draft"


def test_completion_needs_a_note(rig: ApiRig) -> None:
    number = rig.draft()
    for body in [{}, {"note": ""}, {"note": "   "}, {"note": 5}, {"note": "ok", "by": "x"}]:
        resp = rig.call("POST", f"/api/tickets/{number}/complete", "supervisor", json=body)
        error(resp, 422, "validation_failed")
    assert rig.call("GET", f"/api/tickets/{number}").get_json()["status"] == "draft"


def test_oversized_bodies_are_refused(rig: ApiRig) -> None:
    number = rig.draft()
    huge = '{"summary": "%s"}' % ("x" * 70_000)
    resp = rig.call(
        "PATCH", f"/api/tickets/{number}", data=huge, headers={"Content-Type": "application/json"}
    )
    error(resp, 413, "payload_too_large")


# -- campaigns ----------------------------------------------------------------------


def test_campaign_results_for_supervisors(rig: ApiRig) -> None:
    campaign_id = rig.campaign_with_scores(["satisfied", "basically_satisfied", "unsatisfied"])
    listed = rig.call("GET", "/api/campaigns", "supervisor").get_json()["items"]
    assert [(c["id"], c["name"]) for c in listed] == [(campaign_id, "11月回访")]
    assert listed[0]["progress"] == {"done": 3, "outcome:answered": 3}

    detail = rig.call("GET", f"/api/campaigns/{campaign_id}", "supervisor").get_json()
    assert detail["report"]["by"] == "department"
    (row,) = detail["report"]["rows"]
    assert row["group"] == "城市管理综合执法局"
    assert (row["tickets"], row["satisfied"], row["unsatisfied"]) == (3, 1, 1)
    assert row["satisfaction_rate"] == pytest.approx(2 / 3)
    assert detail["report"]["total"]["responses"] == 3
    by_line = rig.call("GET", f"/api/campaigns/{campaign_id}?by=line", "admin").get_json()
    assert [r["group"] for r in by_line["report"]["rows"]] == ["12315"]

    error(rig.call("GET", "/api/campaigns?page=2", "supervisor"), 400, "invalid_parameter")
    error(rig.call("GET", "/api/campaigns/999", "supervisor"), 404, "not_found")
    error(rig.call("GET", "/api/campaigns/0", "supervisor"), 404, "not_found")
    bad = error(rig.call("GET", f"/api/campaigns/{campaign_id}?by=mood", "supervisor"), 400,
                "invalid_parameter")  # fmt: skip
    assert "by" in bad["message"]


# -- audit ----------------------------------------------------------------------------


def test_every_view_and_change_is_audited_with_the_token_name(rig: ApiRig) -> None:
    number = rig.draft()
    campaign_id = rig.campaign_with_scores(["satisfied"])
    rig.call("GET", "/api/tickets?status=surveyed")
    rig.call("GET", f"/api/tickets/{number}")
    rig.call("PATCH", f"/api/tickets/{number}", json={"urgent": True})
    rig.call("POST", f"/api/tickets/{number}/accept")
    rig.call("POST", f"/api/tickets/{number}/complete", "supervisor", json={"note": "已处理"})
    rig.call("GET", "/api/campaigns", "admin")
    rig.call("GET", f"/api/campaigns/{campaign_id}", "admin")
    log = rig.audit_log()
    assert [(actor, action) for actor, action, _, _ in log] == [
        ("api:platform-operator", "tickets.list"),
        ("api:platform-operator", "ticket.view"),
        ("api:platform-operator", "ticket.update"),
        ("api:platform-operator", "ticket.accept"),
        ("api:platform-supervisor", "ticket.complete"),
        ("api:platform-admin", "campaigns.list"),
        ("api:platform-admin", "campaign.view"),
    ]
    listed, _, update, accept, complete, _, viewed = (detail for _, _, _, detail in log)
    assert listed["query"] == {"status": "surveyed"} and len(listed["tickets"]) == 1
    assert update["changes"]["urgent"] == {"old": False, "new": True}
    assert update["changes"]["due_date"] == {"old": "2026-12-14", "new": "2026-11-23"}
    assert accept["changes"]["status"] == {"old": "draft", "new": "registered"}
    assert complete["changes"]["result_note"] == {"old": None, "new": "已处理"}
    assert viewed == {"campaign": campaign_id, "by": "department"}
    ticket_ids = {ticket_id for _, action, ticket_id, _ in log if action.startswith("ticket.")}
    assert len({i for i in ticket_ids if i is not None}) == 1


# -- errors -----------------------------------------------------------------------------


def test_api_errors_are_json_and_other_paths_keep_their_own(rig: ApiRig) -> None:
    error(rig.call("GET", "/api/no-such-thing"), 404, "not_found")
    error(rig.call("GET", "/api"), 404, "not_found")
    resp = rig.call("DELETE", "/api/tickets")
    error(resp, 405, "method_not_allowed")
    assert set(resp.headers["Allow"].split(", ")) >= {"GET"}
    outside = rig.client.get("/no-such-page")
    assert outside.status_code == 404 and outside.mimetype != "application/json"


def test_unexpected_failures_are_a_json_500_and_logged(
    rig: ApiRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr("webhooks.api.tickets.search", broken)
    body = error(rig.call("GET", "/api/tickets"), 500, "internal_error")
    assert "fire" not in body["message"]  # no internals to the caller
    assert "database on fire" in caplog.text and "GET /api/tickets" in caplog.text
    assert rig.audit_log() == []  # the failed request's transaction was rolled back


# -- PostgreSQL -------------------------------------------------------------------------


@pytest.mark.db  # its own database, not the `settings` fixture
@pytest.mark.parametrize("backend", BACKENDS)
def test_review_flow_on_each_database(request: pytest.FixtureRequest, backend: str) -> None:
    with hotline_on(request, backend) as hotline, api_rig(hotline) as rig:
        number = rig.draft()
        assert rig.call("PATCH", f"/api/tickets/{number}", json={"urgent": True}).status_code == 200
        assert rig.call("POST", f"/api/tickets/{number}/accept").status_code == 200
        error(rig.call("POST", f"/api/tickets/{number}/accept"), 409, "illegal_transition")
        resp = rig.call(
            "POST", f"/api/tickets/{number}/complete", "supervisor", json={"note": "已处理"}
        )
        assert resp.get_json()["status"] == "completed"
        page = rig.call("GET", "/api/tickets?urgent=true&created_from=2026-11-23").get_json()
        assert [t["number"] for t in page["items"]] == [number]
        assert [a for _, a, _, _ in rig.audit_log()] == [
            "ticket.update", "ticket.accept", "ticket.complete", "tickets.list"
        ]  # fmt: skip


@pytest.mark.db  # its own database, not the `settings` fixture
@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_accepts_register_a_draft_once(
    request: pytest.FixtureRequest, backend: str
) -> None:
    with hotline_on(request, backend) as hotline, api_rig(hotline) as rig:
        number = rig.draft()
        statuses: list[int] = []

        def platform_worker() -> None:
            client = rig.app.test_client()  # one connection per worker, as under gunicorn
            resp = client.post(f"/api/tickets/{number}/accept", headers=rig.auth("operator"))
            statuses.append(resp.status_code)

        workers = [threading.Thread(target=platform_worker) for _ in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
        assert [a for _, a, _, _ in rig.audit_log()] == ["ticket.accept"]
