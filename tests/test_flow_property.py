"""Random event sequences: the engine never raises and always reaches the end, soon."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.flow import (
    CallerHangup,
    CallState,
    Digits,
    Engine,
    Hangup,
    RecordingFinished,
    Start,
    Timeout,
    Transfer,
)

from .flowkit import DRAFT, LINE_VARS, Recorder, engine

events = st.one_of(
    st.builds(Digits, st.text(alphabet="0123456789*#", min_size=0, max_size=4)),
    st.just(Timeout()),
    st.builds(
        RecordingFinished,
        st.one_of(st.none(), st.fixed_dictionaries({"recording_id": st.integers(1, 9)})),
        st.sampled_from(["finish-key", "silence", "max-length", "hangup", "timeout"]),
    ),
    st.just(CallerHangup()),
    st.builds(Start, st.just({})),
)

# Each wait accepts at most `attempts` failures and the flows are a few nodes deep,
# so a bounded number of events always ends a call (the engine's own cap is 60).
BOUND = 60


def run(e: Engine, seq: list) -> tuple[CallState, list]:  # type: ignore[type-arg]
    step = e.start(LINE_VARS)
    verbs = list(step.verbs)
    state = step.state
    for event in seq:
        if state.ended:
            break
        step = e.step(state, event)
        verbs += step.verbs
        state = step.state
    return state, verbs


@settings(max_examples=300, deadline=None)
@given(
    flow=st.sampled_from(["inbound", "survey"]),
    seq=st.lists(events, max_size=BOUND),
    fail=st.booleans(),
)
def test_any_event_sequence_is_handled(flow: str, seq: list, fail: bool) -> None:  # type: ignore[type-arg]
    rec = Recorder({"create_draft": DRAFT}, fail={"create_draft", "record_score"} if fail else None)
    e = engine(flow, rec)
    state, verbs = run(e, seq)
    if state.ended:
        # A call that ends while the caller is on the line says goodbye with a verb.
        if state.end_reason in ("flow-complete", "too-many-events", "unexpected-events", "loop"):
            assert isinstance(verbs[-1], Hangup)
        if state.end_reason == "transfer":
            assert isinstance(verbs[-1], Transfer)
    assert state.events <= len(seq) + 1


@settings(max_examples=200, deadline=None)
@given(flow=st.sampled_from(["inbound", "survey"]), seq=st.lists(events, min_size=1))
def test_calls_end_within_the_event_limit_whatever_is_sent(flow: str, seq: list) -> None:  # type: ignore[type-arg]
    e = engine(flow, Recorder({"create_draft": DRAFT}))
    # Repeat the random pattern until the call ends; it must end within BOUND events.
    pattern = (seq * (BOUND // len(seq) + 2))[: BOUND + 1]
    state, _ = run(e, pattern)
    assert state.ended, f"not ended after {len(pattern)} events: {state}"


@settings(max_examples=100, deadline=None)
@given(
    seq=st.lists(
        st.one_of(
            st.builds(Digits, st.sampled_from(["1", "2", "3", "9", "#"])), st.just(Timeout())
        ),
        max_size=10,
    )
)
def test_caller_who_never_presses_zero_always_gets_a_draft(seq: list) -> None:  # type: ignore[type-arg]
    rec = Recorder({"create_draft": DRAFT})
    e = engine("inbound", rec)
    state = e.start(LINE_VARS).state
    queue = list(seq)
    padded = 0
    for _ in range(len(seq) + 4):
        if state.ended:
            break
        if state.waiting == "recording":
            event = RecordingFinished({"recording_id": 1})
        elif queue:
            event = queue.pop(0)
        else:
            event, padded = Timeout(), padded + 1
        state = e.step(state, event).state
    assert state.ended and padded <= 2  # two menu timeouts at most, then the statement
    assert rec.names() == ["create_draft"]
