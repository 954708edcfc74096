"""Flows as data: the YAML schema, loading, and validation at load time.

Errors name the file and the node (FlowError), so an office editing
callflows/*.yaml sees what to fix before a caller does.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

KEYS = re.compile(r"^[0-9*#]+$")


class FlowError(Exception):
    """A flow file problem: file, node and reason."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(_M):
    next: str
    set: dict[str, Any] = {}


class _Node(_M):
    prompts: list[str] = []
    on_hangup: str | None = None


class SayNode(_Node):
    type: Literal["say"]
    next: str


class PlayNode(_Node):
    type: Literal["play"]
    url: str
    next: str


class GatherNode(_Node):
    type: Literal["gather"]
    num_digits: int = Field(default=1, ge=1, le=32)
    timeout: float = Field(default=5, gt=0, le=60)
    finish_on_key: str | None = None
    attempts: int = Field(default=2, ge=1, le=10)
    retry_prompts: list[str] = []
    routes: dict[str, Route] = Field(min_length=1)
    exhausted: Route

    @field_validator("routes")
    @classmethod
    def _keys(cls, v: dict[str, Route]) -> dict[str, Route]:
        for key in v:
            if not KEYS.match(key):
                raise ValueError(f"route key {key!r} is not a keypress string (0-9, *, #)")
        return v


class RecordNode(_Node):
    type: Literal["record"]
    max_length: int = Field(default=120, ge=1, le=3600)
    silence_end: float = Field(default=3, ge=0, le=60)
    finish_on_key: str | None = "#"
    beep: bool = True
    next: str
    # Where to go when the live recognizer hears an emergency (default: next).
    on_emergency: str | None = None


class ActionNode(_Node):
    type: Literal["action"]
    action: str
    next: str
    on_error: str | None = None


class BranchNode(_Node):
    """Go to the node named for the value of a call variable (e.g. the draft's scope kind)."""

    type: Literal["branch"]
    var: str
    cases: dict[str, str] = Field(min_length=1)
    default: str


class TransferNode(_Node):
    type: Literal["transfer"]
    target: str


class HangupNode(_Node):
    type: Literal["hangup"]


Node = Annotated[
    SayNode
    | PlayNode
    | GatherNode
    | RecordNode
    | ActionNode
    | BranchNode
    | TransferNode
    | HangupNode,
    Field(discriminator="type"),
]
TERMINAL = (TransferNode, HangupNode)


class Flow(_M):
    name: str
    start: str
    error_node: str | None = None
    prompts: dict[str, str]
    nodes: dict[str, Node]
    source: str = "<memory>"

    def edges(self, name: str) -> list[str]:
        node = self.nodes[name]
        out: list[str] = []
        if isinstance(node, SayNode | PlayNode | RecordNode | ActionNode):
            out.append(node.next)
        if isinstance(node, GatherNode):
            out += [r.next for r in node.routes.values()] + [node.exhausted.next]
        if isinstance(node, BranchNode):
            out += [*node.cases.values(), node.default]
        if isinstance(node, ActionNode) and node.on_error:
            out.append(node.on_error)
        if isinstance(node, RecordNode) and node.on_emergency:
            out.append(node.on_emergency)
        if node.on_hangup:
            out.append(node.on_hangup)
        return out

    def handles_emergencies(self) -> bool:
        """True if a record node says where to go when an emergency is heard."""
        return any(isinstance(n, RecordNode) and n.on_emergency for n in self.nodes.values())

    def actions(self) -> set[str]:
        return {n.action for n in self.nodes.values() if isinstance(n, ActionNode)}

    def route_values(self, key: str) -> Iterable[tuple[str, Any]]:
        """(node name, value) for every `set: {key: value}` in the flow."""
        for name, node in self.nodes.items():
            if isinstance(node, GatherNode):
                for route in [*node.routes.values(), node.exhausted]:
                    if key in route.set:
                        yield name, route.set[key]


def _prompt_refs(node: Any) -> list[str]:
    refs = list(node.prompts)
    if isinstance(node, GatherNode):
        refs += node.retry_prompts
    return refs


def validate(flow: Flow) -> None:
    src = flow.source
    if flow.start not in flow.nodes:
        raise FlowError(f"{src}: start: node {flow.start!r} does not exist")
    if flow.error_node and flow.error_node not in flow.nodes:
        raise FlowError(f"{src}: error_node: node {flow.error_node!r} does not exist")
    for name, node in flow.nodes.items():
        for target in flow.edges(name):
            if target not in flow.nodes:
                raise FlowError(f"{src}: node {name!r}: goes to unknown node {target!r}")
        for prompt in _prompt_refs(node):
            if prompt not in flow.prompts:
                raise FlowError(f"{src}: node {name!r}: prompt {prompt!r} is not defined")
    for pname, text in flow.prompts.items():
        try:
            list(string.Formatter().parse(text))
        except ValueError as exc:
            raise FlowError(f"{src}: prompt {pname!r}: bad placeholder: {exc}") from exc
    roots = [flow.start] + ([flow.error_node] if flow.error_node else [])
    reached = _reachable(flow, roots)
    for name in flow.nodes:
        if name not in reached:
            raise FlowError(f"{src}: node {name!r}: unreachable from start {flow.start!r}")
    ends = {n for n, node in flow.nodes.items() if isinstance(node, TERMINAL)}
    for name in flow.nodes:
        if not (_reachable(flow, [name]) & ends):
            raise FlowError(f"{src}: node {name!r}: no path from it reaches a hangup or transfer")


def _reachable(flow: Flow, roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in flow.nodes:
            continue
        seen.add(name)
        todo.extend(flow.edges(name))
    return seen


def _where(loc: tuple[Any, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "nodes":
        rest = ".".join(str(p) for p in loc[3:])  # skip the discriminator tag
        return f"node {loc[1]!r}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_flow(data: Any, source: str) -> Flow:
    if not isinstance(data, dict):
        raise FlowError(f"{source}: (top level): expected a mapping with name, start, nodes")
    try:
        flow = Flow.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise FlowError(f"{source}: " + "; ".join(problems)) from exc
    validate(flow)
    return flow


def load_flow(path: Path) -> Flow:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError(f"{path}: cannot read flow file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise FlowError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return parse_flow(data, str(path))
