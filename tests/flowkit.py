"""Helpers for driving the real flows in tests without a telephone."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ivr.flow import Engine, Flow, load_flow

ROOT = Path(__file__).resolve().parents[1]


def flow(name: str) -> Flow:
    return load_flow(ROOT / "callflows" / f"{name}.yaml")


class Recorder:
    """Fake actions that remember what they were called with."""

    def __init__(
        self, results: Mapping[str, Mapping[str, Any]] | None = None, fail: set[str] | None = None
    ) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.results = dict(results or {})
        self.fail = fail or set()

    def action(self, name: str):  # type: ignore[no-untyped-def]
        def run(variables: Mapping[str, Any]) -> Mapping[str, Any] | None:
            self.calls.append((name, dict(variables)))
            if name in self.fail:
                raise RuntimeError(f"{name} exploded")
            return self.results.get(name)

        return run

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


def engine(name: str, recorder: Recorder) -> Engine:
    f = flow(name)
    return Engine(f, {a: recorder.action(a) for a in f.actions()})


LINE_VARS = {
    "greeting": "您好，您拨打的12315市场监管热线已并入12345政务服务便民热线。",
    "line_name": "12315市场监管热线",
    "line_number": "12315",
    "operator": "sip:operator@127.0.0.1",
}
DRAFT = {
    "ticket_no": "12345-20261123-00001",
    "ticket_no_spoken": "幺二三四五，二零二六幺幺二三，零零零零幺",
    "contact_due_spoken": "11月25日",
    "due_date_spoken": "12月14日",
    "scope_kind": None,
    "scope_advice": "",
}
