"""Every node and transition of callflows/survey.yaml."""

from __future__ import annotations

import pytest

from ivr.flow import CallerHangup, Digits, Gather, Hangup, Record, RecordingFinished, Timeout

from .flowkit import LINE_VARS, Recorder, engine
from .test_flow_inbound import prompts

VARS = {
    **LINE_VARS,
    "ticket_no_spoken": "幺二三四五，二零二六幺幺二三，零零零零幺",
    "attempt_id": 9,
}


def started(rec: Recorder):  # type: ignore[no-untyped-def]
    e = engine("survey", rec)
    return e, e.start(VARS)


def test_intro_names_hotline_and_ticket_then_asks() -> None:
    _, step = started(Recorder())
    assert prompts(step.verbs) == ["intro", "ask"]
    assert (
        "12315市场监管热线" in step.verbs[0].text and VARS["ticket_no_spoken"] in step.verbs[0].text
    )
    ask = step.verbs[1]
    assert (
        isinstance(ask, Gather) and ask.prompts[0].text == "满意请按1，基本满意请按2，不满意请按3。"
    )


@pytest.mark.parametrize(
    ("key", "score", "solved", "resolved"),
    [
        ("1", "satisfied", "1", "resolved"),
        ("2", "basically_satisfied", "2", "unresolved"),
    ],
)
def test_satisfied_then_solved_scores_and_thanks(
    key: str, score: str, solved: str, resolved: str
) -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, Digits(key))
    assert rec.calls == []
    [solved_q] = step.verbs
    assert prompts(step.verbs) == ["solved"] and isinstance(solved_q, Gather)
    assert solved_q.prompts[0].text == "问题是否已解决：已解决请按1，未解决请按2。"
    step = e.step(step.state, Digits(solved))
    assert rec.calls == [("record_score", rec.calls[0][1])]
    assert rec.calls[0][1]["score"] == score and rec.calls[0][1]["attempt_id"] == 9
    assert rec.calls[0][1]["resolved"] == resolved
    assert prompts(step.verbs) == ["thanks"] and step.verbs[-1] == Hangup()


def test_no_key_to_the_second_question_keeps_the_score_unsolved_unknown() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, Digits("1"))
    step = e.step(step.state, Digits("7"))  # not a choice: asked once more
    assert prompts(step.verbs) == ["retry", "solved"]
    step = e.step(step.state, Timeout())
    assert rec.calls[0][1]["score"] == "satisfied" and "resolved" not in rec.calls[0][1]
    assert prompts(step.verbs) == ["thanks"]


def test_unsatisfied_asks_if_solved_then_for_reason_then_rehandles() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, Digits("3"))
    assert prompts(step.verbs) == ["solved"]
    step = e.step(step.state, Digits("2"))
    assert prompts(step.verbs) == ["reason"] and isinstance(step.verbs[-1], Record)
    assert step.verbs[-1].max_length_s == 30
    assert rec.calls == []
    step = e.step(step.state, RecordingFinished({"recording_id": 4}))
    assert rec.calls[0][1]["score"] == "unsatisfied"
    assert rec.calls[0][1]["resolved"] == "unresolved"
    assert rec.calls[0][1]["recording"] == {"recording_id": 4}
    assert prompts(step.verbs) == ["rehandle"]


@pytest.mark.parametrize("keys", [["3"], ["3", "2"]])
def test_unsatisfied_then_hangup_still_records_score(keys: list[str]) -> None:
    rec = Recorder()
    e, step = started(rec)
    for key in keys:
        step = e.step(step.state, Digits(key))
    step = e.step(step.state, CallerHangup())
    assert rec.calls[0][1]["score"] == "unsatisfied" and step.verbs == ()


def test_invalid_key_repeats_up_to_twice_then_no_response() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, Digits("7"))
    assert prompts(step.verbs) == ["retry", "ask"]
    step = e.step(step.state, Timeout())
    assert prompts(step.verbs) == ["retry", "ask"]
    step = e.step(step.state, Digits("#"))
    assert rec.calls[0][1]["score"] == "no_response"
    assert prompts(step.verbs) == ["no_response"] and step.state.ended


def test_valid_key_on_last_repeat_counts() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, Timeout())
    step = e.step(step.state, Timeout())
    step = e.step(step.state, Digits("2"))
    step = e.step(step.state, Digits("1"))
    assert rec.calls[0][1]["score"] == "basically_satisfied"


def test_hangup_before_any_key_records_no_response() -> None:
    rec = Recorder()
    e, step = started(rec)
    step = e.step(step.state, CallerHangup())
    assert rec.names() == ["record_score"] and "score" not in rec.calls[0][1]
    assert step.verbs == () and step.state.ended


def test_score_action_failure_apologises() -> None:
    rec = Recorder(fail={"record_score"})
    e, step = started(rec)
    step = e.step(step.state, Digits("1"))
    step = e.step(step.state, Digits("1"))
    assert prompts(step.verbs) == ["sorry"]
