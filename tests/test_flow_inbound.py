"""Every node and transition of callflows/inbound.yaml."""

from __future__ import annotations

import pytest

from ivr.flow import (
    CallerHangup,
    CallState,
    Digits,
    EmergencyHeard,
    Gather,
    Hangup,
    Record,
    RecordingFinished,
    Say,
    Start,
    Timeout,
    Transfer,
)

from .flowkit import DRAFT, LINE_VARS, Recorder, engine


def prompts(verbs) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for v in verbs:
        if isinstance(v, Say):
            out.append(v.prompt)
        elif isinstance(v, Gather):
            out += [p.prompt for p in v.prompts]
    return out


def started(rec: Recorder):  # type: ignore[no-untyped-def]
    e = engine("inbound", rec)
    return e, e.start(LINE_VARS)


def test_greeting_then_menu_with_line_specific_text() -> None:
    _, step = started(Recorder())
    greeting, menu = step.verbs
    assert greeting == Say("greeting", LINE_VARS["greeting"])
    assert isinstance(menu, Gather) and menu.num_digits == 1 and menu.timeout_s == 6
    assert "咨询请按1" in menu.prompts[0].text and "人工服务请按0" in menu.prompts[0].text
    assert step.state.node == "menu" and step.state.waiting == "digits"


@pytest.mark.parametrize(
    ("key", "category"), [("1", "咨询"), ("2", "投诉"), ("3", "求助"), ("4", "建议"), ("5", "举报")]
)
def test_menu_key_sets_category_and_asks_for_statement(key: str, category: str) -> None:
    e, step = started(Recorder())
    step = e.step(step.state, Digits(key))
    assert step.state.vars["category"] == category
    assert prompts(step.verbs) == ["statement"]
    record = step.verbs[-1]
    assert record == Record(max_length_s=120, silence_end_s=3, finish_on_key="#", beep=True)
    assert step.state.waiting == "recording"


def test_zero_transfers_to_operator() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, Digits("0"))
    assert prompts(step.verbs) == ["transfer"]
    assert step.verbs[-1] == Transfer("sip:operator@127.0.0.1")
    assert step.state.ended and step.state.end_reason == "transfer"
    assert rec.calls == []  # no draft for a transferred call


def test_invalid_key_retries_then_valid_key_counts() -> None:
    e, step = started(Recorder())
    step = e.step(step.state, Digits("9"))
    assert prompts(step.verbs) == ["menu_retry", "menu"]
    assert step.state.node == "menu"
    step = e.step(step.state, Digits("3"))
    assert step.state.vars["category"] == "求助"


@pytest.mark.parametrize(
    "events", [(Digits("9"), Digits("8")), (Timeout(), Timeout()), (Digits("*"), Timeout())]
)
def test_invalid_or_no_key_twice_goes_on_without_category(events) -> None:  # type: ignore[no-untyped-def]
    e, step = started(Recorder())
    step = e.step(step.state, events[0])
    assert prompts(step.verbs) == ["menu_retry", "menu"]
    step = e.step(step.state, events[1])
    assert "category" not in step.state.vars  # intake takes it from the text or the line
    assert prompts(step.verbs) == ["statement"]


def test_statement_creates_draft_and_reads_back_ticket() -> None:
    rec = Recorder({"create_draft": DRAFT})
    e, step = started(rec)
    step = e.step(step.state, Digits("2"))
    step = e.step(step.state, RecordingFinished({"recording_id": 7}, "finish-key"))
    assert rec.names() == ["create_draft"]
    assert rec.calls[0][1]["recording"] == {"recording_id": 7}
    assert rec.calls[0][1]["category"] == "投诉"
    assert prompts(step.verbs) == ["readback", "goodbye"]
    readback = step.verbs[0]
    assert isinstance(readback, Say)
    assert DRAFT["ticket_no_spoken"] in readback.text and "12月14日" in readback.text
    assert step.verbs[-1] == Hangup()
    assert step.state.ended and step.state.end_reason == "flow-complete"


FIRE = "如遇火灾请立即拨打119火警电话。"


def emergency_draft() -> Recorder:
    return Recorder({"create_draft": {**DRAFT, "scope_kind": "emergency", "scope_advice": FIRE}})


def test_emergency_draft_advises_emergency_number_and_offers_operator() -> None:
    e, step = started(emergency_draft())
    step = e.step(step.state, Digits("3"))
    step = e.step(step.state, RecordingFinished({"recording_id": 1}))
    # The emergency number first; no ticket number or deadline for an emergency.
    assert prompts(step.verbs) == ["emergency", "emergency_operator"]
    assert "119" in step.verbs[0].prompts[0].text
    assert step.state.waiting == "digits"
    step = e.step(step.state, Digits("0"))
    assert prompts(step.verbs) == ["transfer"]
    assert step.verbs[-1] == Transfer("sip:operator@127.0.0.1")


def test_emergency_caller_who_presses_nothing_hears_goodbye() -> None:
    e, step = started(emergency_draft())
    step = e.step(step.state, Digits("3"))
    step = e.step(step.state, RecordingFinished({"recording_id": 1}))
    step = e.step(step.state, Timeout())
    assert prompts(step.verbs) == ["goodbye"]
    assert step.state.ended and step.state.end_reason == "flow-complete"


def test_emergency_heard_while_speaking_stops_recording_and_advises() -> None:
    rec = emergency_draft()
    e, step = started(rec)
    step = e.step(step.state, Digits("2"))
    heard = EmergencyHeard("火警", FIRE, "楼下 着火 了", {"recording_id": 4})
    step = e.step(step.state, heard)
    # The draft is still made, from the recording, told which rule was heard.
    assert rec.names() == ["create_draft"]
    assert rec.calls[0][1]["recording"] == {"recording_id": 4}
    assert rec.calls[0][1]["emergency_rule"] == "火警"
    assert rec.calls[0][1]["recording_end"] == "emergency"
    assert prompts(step.verbs) == ["emergency", "emergency_operator"]
    step = e.step(step.state, Digits("0"))
    assert step.verbs[-1] == Transfer("sip:operator@127.0.0.1")


def test_emergency_heard_advice_is_spoken_even_when_the_draft_fails() -> None:
    e, step = started(Recorder(fail={"create_draft"}))
    step = e.step(step.state, Digits("1"))
    step = e.step(step.state, EmergencyHeard("火警", FIRE))
    assert prompts(step.verbs) == ["emergency", "emergency_operator"]
    assert step.verbs[0].prompts[0].text == FIRE


def test_emergency_heard_outside_recording_is_ignored() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, EmergencyHeard("火警", FIRE))
    assert step.verbs == () and step.state.node == "menu" and rec.calls == []


def test_out_of_scope_caller_hears_where_to_go_not_a_ticket_number() -> None:
    advice = "信访事项请按《信访工作条例》向信访部门提出。"
    rec = Recorder(
        {"create_draft": {**DRAFT, "scope_kind": "out_of_scope", "scope_advice": advice}}
    )
    e, step = started(rec)
    step = e.step(step.state, Digits("1"))
    step = e.step(step.state, RecordingFinished({"recording_id": 1}))
    assert rec.names() == ["create_draft"]  # the draft is still stored for the operator
    assert prompts(step.verbs) == ["out_of_scope", "goodbye"]
    said = step.verbs[0].text
    assert "不在本热线的受理范围" in said and advice in said
    assert DRAFT["ticket_no_spoken"] not in said


@pytest.mark.parametrize(
    "event", [CallerHangup(), RecordingFinished({"recording_id": 3}, "hangup")]
)
def test_hangup_while_speaking_still_creates_draft_silently(event) -> None:  # type: ignore[no-untyped-def]
    rec = Recorder({"create_draft": DRAFT})
    e, step = started(rec)
    step = e.step(step.state, Digits("2"))
    step = e.step(step.state, event)
    assert rec.names() == ["create_draft"]
    assert step.verbs == ()  # nothing is played to a caller who is gone
    assert step.state.ended and step.state.end_reason == "caller-hangup"


def test_record_timeout_goes_on_without_recording() -> None:
    rec = Recorder({"create_draft": DRAFT})
    e, step = started(rec)
    step = e.step(step.state, Digits("1"))
    step = e.step(step.state, Timeout())
    assert rec.calls[0][1]["recording"] is None
    assert prompts(step.verbs) == ["readback", "goodbye"]


def test_hangup_in_menu_ends_without_draft() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, CallerHangup())
    assert step.state.ended and step.verbs == () and rec.calls == []


def test_failing_draft_action_apologises_and_hangs_up() -> None:
    rec = Recorder(fail={"create_draft"})
    e, step = started(rec)
    step = e.step(step.state, Digits("1"))
    step = e.step(step.state, RecordingFinished({"recording_id": 1}))
    assert prompts(step.verbs) == ["sorry"]
    assert step.verbs[-1] == Hangup()
    assert "exploded" in step.state.vars["error"]


def test_events_after_the_end_are_ignored() -> None:
    e, step = started(Recorder())
    step = e.step(step.state, Digits("0"))
    after = e.step(step.state, Digits("1"))
    assert after.verbs == () and after.state.ended and after.state.ignored == 1


def test_unexpected_events_are_ignored_then_bounded() -> None:
    e, step = started(Recorder())
    state = step.state
    step = e.step(state, RecordingFinished({"recording_id": 1}))  # not recording yet
    assert step.verbs == () and step.state.node == "menu" and step.state.waiting == "digits"
    step = e.step(step.state, Start({}))  # a second start
    assert step.verbs == () and step.state.ignored == 2
    for _ in range(20):
        step = e.step(step.state, RecordingFinished(None))
        if step.state.ended:
            break
    assert step.state.ended and step.state.end_reason == "unexpected-events"
    assert step.verbs[-1] == Hangup("unexpected-events")


def test_event_before_start_ends_quietly() -> None:
    e = engine("inbound", Recorder())
    step = e.step(CallState(), CallerHangup())
    assert step.state.ended and step.verbs == ()


def test_state_round_trips_through_json() -> None:
    import json

    e, step = started(Recorder())
    step = e.step(step.state, Digits("9"))
    again = CallState.from_dict(json.loads(json.dumps(step.state.to_dict())))
    assert again == step.state
    assert e.step(again, Digits("2")).state.vars["category"] == "投诉"
