"""Repeat calls: the same request from the same caller or about the same place is linked
as 重复件; a different request is not, however alike its wording; the draft lists the
caller's earlier tickets, with phone numbers masked for operators."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.clock import FixedClock
from ivr.intake.duplicates import address_key
from ivr.store import Ticket
from ivr.tickets import update_fields

from .consolekit import browser, console_app

CALLER = "13800138000"
NEIGHBOUR = "13900139000"


def call(hotline: Hotline, text: str, caller: str = CALLER) -> dict[str, Any]:
    ticket = simulate_inbound(hotline, line="12345", caller=caller, text=text).ticket
    assert ticket is not None
    return ticket


def test_no_water_and_no_power_are_different_requests(hotline: Hotline) -> None:
    water = call(hotline, "我们小区停水了")
    power = call(hotline, "我们小区停电了")
    assert power["duplicate_of"] is None
    assert water["number"] != power["number"]


@pytest.mark.parametrize(
    ("first", "again", "caller_again"),
    [
        ("我们楼从昨天开始就没水了", "小区停水一天了什么时候来水", CALLER),
        ("公司拖欠我三个月工资一直不发", "老板到现在还没给我发工资已经欠了三个月了", CALLER),
        (
            "五华区人民中路阳光花园小区3栋从早上开始停电了",
            "阳光花园小区5栋没电了到现在还没来电",
            NEIGHBOUR,
        ),
        (
            "盘龙区北京路888号门口的路灯坏了好几天了晚上黑漆漆的",
            "北京路888号那里的灯一直不亮晚上走路很危险",
            NEIGHBOUR,
        ),
    ],
    ids=["same-caller-water", "same-caller-wages", "same-estate-power", "same-road-streetlight"],
)
def test_repeat_calls_in_other_words_are_linked(
    hotline: Hotline, clock: FixedClock, first: str, again: str, caller_again: str
) -> None:
    original = call(hotline, first)
    clock.advance(days=2)
    repeat = call(hotline, again, caller_again)
    assert repeat["duplicate_of"] == original["number"]


def test_same_words_at_another_address_are_not_linked_unless_same_caller(
    hotline: Hotline,
) -> None:
    original = call(hotline, "阳光花园小区停电了什么时候来电")
    elsewhere = call(hotline, "金色家园小区停电了什么时候来电", NEIGHBOUR)
    assert elsewhere["duplicate_of"] is None
    same_caller = call(hotline, "金色家园小区也停电了什么时候来电")
    assert same_caller["duplicate_of"] == original["number"]


def test_repeat_call_outside_the_window_is_not_linked(hotline: Hotline, clock: FixedClock) -> None:
    call(hotline, "我们楼从昨天开始就没水了")
    clock.advance(days=hotline.settings.duplicates.window_days + 1)
    assert call(hotline, "小区停水一天了什么时候来水")["duplicate_of"] is None


def test_address_corrected_by_an_operator_links_later_calls_there(
    hotline: Hotline, clock: FixedClock
) -> None:
    first = call(hotline, "我家停电了什么时候来电")
    with hotline.db.session() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.number == first["number"])).one()
        update_fields(hotline, ticket, {"address": "五华区阳光花园小区3栋"}, clock.now())
    clock.advance(hours=2)
    assert call(hotline, "阳光花园小区没电了", NEIGHBOUR)["duplicate_of"] == first["number"]


def test_address_key_names_the_place_not_the_flat() -> None:
    estate = {"street": "人民中路阳光花园小区3栋", "adcode": "530102", "city": "昆明市"}
    flat = {"street": "阳光花园小区5栋2单元", "adcode": "530103", "city": "昆明市"}
    assert address_key(estate) == address_key(flat) == "5301|阳光花园"
    assert address_key({"street": "北京路888号", "adcode": "530103"}) != address_key(
        {"street": "北京路88号", "adcode": "530103"}
    )
    assert address_key({"street": None, "district": "五华区", "adcode": "530102"}) is None


def test_draft_lists_the_callers_earlier_tickets(hotline: Hotline, clock: FixedClock) -> None:
    old = call(hotline, "物业公司乱收停车费还不给开发票")
    clock.advance(days=hotline.settings.duplicates.history_days + 1)
    wages = call(hotline, "公司拖欠我三个月工资一直不发")
    call(hotline, "我们小区的路灯坏了", NEIGHBOUR)
    clock.advance(days=1)
    lamp = call(hotline, "小区门口的路灯坏了晚上很黑")
    clock.advance(days=1)
    draft = call(hotline, "我们小区停电了")
    earlier = draft["earlier_tickets"]
    assert [e["number"] for e in earlier] == [lamp["number"], wages["number"]]  # newest first
    assert earlier[0] == {
        "number": lamp["number"],
        "created_at": lamp["created_at"],
        "status": "draft",
        "summary": lamp["summary"],
    }
    assert old["number"] not in [e["number"] for e in earlier]  # beyond history_days


def test_console_lists_earlier_tickets_with_phone_numbers_masked(hotline: Hotline) -> None:
    first = call(hotline, "公司拖欠我三个月工资一直不发联系电话13912345678")
    second = call(hotline, "我们小区停电了")
    with hotline.db.read() as s:
        ticket_id = s.scalars(select(Ticket.id).where(Ticket.number == second["number"])).one()
    with console_app(hotline) as app:
        page = browser(app, "operator").get(f"/console/tickets/{ticket_id}").get_data(as_text=True)
        assert 'id="earlier"' in page and first["number"] in page
        assert "拖欠" in page
        assert CALLER not in page and "13912345678" not in page
        assert "138****8000" in page and "139****5678" in page
