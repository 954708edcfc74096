"""The flow engine: (flow, state, event) -> (verbs, new state).

Pure apart from the named actions the application registers (create the draft,
record a score); an action that raises is logged and routed to `on_error`.
The engine never raises on any event sequence and always ends a call: every
event counts toward a per-call limit, after which it hangs up.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ivr.flow.definition import (
    ActionNode,
    BranchNode,
    Flow,
    FlowError,
    GatherNode,
    HangupNode,
    PlayNode,
    RecordNode,
    Route,
    SayNode,
    TransferNode,
)
from ivr.flow.verbs import (
    CallerHangup,
    Digits,
    EmergencyHeard,
    Event,
    Gather,
    Hangup,
    Play,
    Record,
    RecordingFinished,
    Say,
    Start,
    Timeout,
    Transfer,
    Verb,
)

log = logging.getLogger(__name__)

Action = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
Waiting = Literal["digits", "recording"] | None

# Nodes run in one step without waiting for the caller; flows never need many.
MAX_CHAIN = 64


@dataclass(frozen=True)
class CallState:
    node: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    waiting: Waiting = None
    started: bool = False
    ended: bool = False
    end_reason: str | None = None
    events: int = 0
    ignored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "vars": dict(self.vars),
            "attempts": dict(self.attempts),
            "waiting": self.waiting,
            "started": self.started,
            "ended": self.ended,
            "end_reason": self.end_reason,
            "events": self.events,
            "ignored": self.ignored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallState:
        return cls(
            node=data.get("node"),
            vars=dict(data.get("vars") or {}),
            attempts=dict(data.get("attempts") or {}),
            waiting=data.get("waiting"),
            started=bool(data.get("started")),
            ended=bool(data.get("ended")),
            end_reason=data.get("end_reason"),
            events=int(data.get("events") or 0),
            ignored=int(data.get("ignored") or 0),
        )


@dataclass(frozen=True)
class Step:
    verbs: tuple[Verb, ...]
    state: CallState


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Fill {placeholders} from call variables; unknown ones render empty."""
    try:
        return string.Formatter().vformat(template, (), _Blank(variables))
    except (ValueError, IndexError, AttributeError, KeyError):
        log.warning("prompt template could not be rendered: %r", template)
        return template


def check_actions(flow: Flow, actions: Mapping[str, Action]) -> None:
    missing = sorted(flow.actions() - set(actions))
    if missing:
        raise FlowError(f"{flow.source}: actions not registered by the application: {missing}")


class _Run:
    """One step's mutable scratch space; the result is frozen into a new CallState."""

    def __init__(self, flow: Flow, state: CallState, actions: Mapping[str, Action]) -> None:
        self.flow = flow
        self.actions = actions
        self.vars = dict(state.vars)
        self.attempts = dict(state.attempts)
        self.verbs: list[Verb] = []
        self.node: str | None = state.node
        self.waiting: Waiting = None
        self.ended = False
        self.end_reason: str | None = None
        self.silent = False  # the caller is gone: run actions, emit no media

    def say(self, prompts: list[str]) -> tuple[Say, ...]:
        return tuple(Say(p, render(self.flow.prompts[p], self.vars)) for p in prompts)

    def emit(self, *verbs: Verb) -> None:
        if not self.silent:
            self.verbs.extend(verbs)

    def end(self, reason: str, verb: Verb | None = None) -> None:
        if verb is not None:
            self.emit(verb)
        self.ended, self.waiting, self.end_reason = True, None, reason

    def follow(self, route: Route) -> None:
        self.vars.update(route.set)
        self.run(route.next)

    def run(self, name: str | None) -> None:
        for _ in range(MAX_CHAIN):
            if name is None:
                self.end("no-next-node", Hangup("error"))
                return
            self.node = name
            node = self.flow.nodes[name]
            if isinstance(node, SayNode):
                self.emit(*self.say(node.prompts))
                name = node.next
            elif isinstance(node, PlayNode):
                self.emit(*self.say(node.prompts), Play(render(node.url, self.vars)))
                name = node.next
            elif isinstance(node, ActionNode):
                name = self.act(name, node)
            elif isinstance(node, BranchNode):
                name = node.cases.get(str(self.vars.get(node.var)), node.default)
            elif isinstance(node, GatherNode):
                if self.silent:
                    self.end("caller-hangup")
                    return
                prompts = self.say(node.prompts)
                self.emit(Gather(node.num_digits, node.timeout, node.finish_on_key, prompts))
                self.waiting = "digits"
                return
            elif isinstance(node, RecordNode):
                if self.silent:
                    self.end("caller-hangup")
                    return
                self.emit(*self.say(node.prompts))
                self.emit(Record(node.max_length, node.silence_end, node.finish_on_key, node.beep))
                self.waiting = "recording"
                return
            elif isinstance(node, TransferNode):
                self.emit(*self.say(node.prompts))
                self.end("transfer", Transfer(render(node.target, self.vars)))
                return
            elif isinstance(node, HangupNode):
                self.emit(*self.say(node.prompts))
                self.end("caller-hangup" if self.silent else "flow-complete", Hangup())
                return
        log.error(
            "flow %s: more than %d nodes without waiting; hanging up", self.flow.name, MAX_CHAIN
        )
        self.end("loop", Hangup("error"))

    def act(self, name: str, node: ActionNode) -> str | None:
        fn = self.actions.get(node.action)
        try:
            if fn is None:
                raise LookupError(f"action {node.action!r} is not registered")
            result = fn(dict(self.vars))
            if result:
                self.vars.update(result)
            return node.next
        except Exception as exc:  # an action failing must not drop the call
            log.exception("flow %s node %s: action %s failed", self.flow.name, name, node.action)
            self.vars["error"] = f"{type(exc).__name__}: {exc}"
            return node.on_error or self.flow.error_node

    def gather_failed(self, name: str, node: GatherNode) -> None:
        tries = self.attempts.get(name, 0) + 1
        self.attempts[name] = tries
        if tries >= node.attempts:
            self.follow(node.exhausted)
        else:
            self.emit(*self.say(node.retry_prompts))
            self.run(name)

    def freeze(self, old: CallState, ignored: int) -> CallState:
        return replace(
            old,
            node=self.node,
            vars=self.vars,
            attempts=self.attempts,
            waiting=None if self.ended else self.waiting,
            started=True,
            ended=self.ended,
            end_reason=self.end_reason,
            events=old.events + 1,
            ignored=ignored,
        )


def step(
    flow: Flow,
    state: CallState,
    event: Event,
    actions: Mapping[str, Action] | None = None,
    max_events: int = 60,
) -> Step:
    """Advance one call by one event."""
    actions = actions or {}
    if state.ended:
        return Step((), replace(state, events=state.events + 1, ignored=state.ignored + 1))
    run = _Run(flow, state, actions)
    ignored = state.ignored
    node = flow.nodes.get(state.node) if state.node else None

    if state.events + 1 > max_events:
        log.warning("flow %s: call exceeded %d events; hanging up", flow.name, max_events)
        run.end("too-many-events", Hangup("too-many-events"))
    elif isinstance(event, Start):
        if state.started:
            ignored += 1
            run.waiting = state.waiting
        else:
            run.vars.update(event.vars)
            run.run(flow.start)
    elif not state.started:
        # Anything before the call started (a hang-up of a cancelled call, say) ends it quietly.
        run.end("not-started")
    elif isinstance(event, CallerHangup):
        run.silent = True
        if node is not None and node.on_hangup:
            run.run(node.on_hangup)
        if not run.ended:
            run.end("caller-hangup")
    elif isinstance(event, Digits) and state.waiting == "digits" and isinstance(node, GatherNode):
        assert state.node is not None
        keys = event.digits
        if node.finish_on_key and keys.endswith(node.finish_on_key):
            keys = keys[: -len(node.finish_on_key)]
        if keys in node.routes:
            run.attempts.pop(state.node, None)
            run.follow(node.routes[keys])
        else:
            run.gather_failed(state.node, node)
    elif isinstance(event, Timeout) and state.waiting == "digits" and isinstance(node, GatherNode):
        assert state.node is not None
        run.gather_failed(state.node, node)
    elif (
        isinstance(event, RecordingFinished | Timeout)
        and state.waiting == "recording"
        and isinstance(node, RecordNode)
    ):
        recording = event.recording if isinstance(event, RecordingFinished) else None
        reason = event.reason if isinstance(event, RecordingFinished) else "timeout"
        run.vars.update(recording=recording, recording_end=reason)
        run.silent = reason == "hangup"
        run.run(node.next)
        if run.silent and not run.ended:
            run.end("caller-hangup")
    elif (
        isinstance(event, EmergencyHeard)
        and state.waiting == "recording"
        and isinstance(node, RecordNode)
    ):
        run.vars.update(
            recording=event.recording,
            recording_end="emergency",
            emergency_rule=event.rule,
            scope_kind="emergency",
            scope_advice=event.advice,
        )
        run.run(node.on_emergency or node.next)
    else:
        ignored += 1
        run.waiting = state.waiting
        if ignored > max_events // 4:
            log.warning("flow %s: too many unexpected events; hanging up", flow.name)
            run.end("unexpected-events", Hangup("unexpected-events"))
    return Step(tuple(run.verbs), run.freeze(state, ignored))


class Engine:
    """A flow bound to the application's actions."""

    def __init__(
        self, flow: Flow, actions: Mapping[str, Action] | None = None, max_events: int = 60
    ) -> None:
        self.flow = flow
        self.actions = dict(actions or {})
        self.max_events = max_events
        check_actions(flow, self.actions)

    def step(self, state: CallState, event: Event) -> Step:
        return step(self.flow, state, event, self.actions, self.max_events)

    def start(self, variables: Mapping[str, Any] | None = None) -> Step:
        return self.step(CallState(), Start(dict(variables or {})))
