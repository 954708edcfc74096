"""Malformed flow YAML is refused at load with the file and the node named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.config import Settings
from ivr.flow import FlowError, load_flow
from ivr.flow.configured import load_flows
from ivr.flow.engine import Engine

from .flowkit import ROOT


def inbound() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "callflows" / "inbound.yaml").read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict) -> Path:  # type: ignore[type-arg]
    p = tmp_path / "inbound.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def broken(mutate) -> dict:  # type: ignore[no-untyped-def,type-arg]
    d = inbound()
    mutate(d)
    return d


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            broken(lambda d: d["nodes"]["greeting"].update(next="menuu")),
            "node 'greeting': goes to unknown node 'menuu'",
        ),
        (
            broken(lambda d: d["nodes"]["menu"]["routes"]["1"].update(next="nowhere")),
            "node 'menu': goes to unknown node 'nowhere'",
        ),
        (
            broken(lambda d: d["nodes"].update(orphan={"type": "hangup"})),
            "node 'orphan': unreachable from start 'greeting'",
        ),
        (
            broken(lambda d: d["nodes"]["menu"].update(prompts=["menuu"])),
            "node 'menu': prompt 'menuu' is not defined",
        ),
        (broken(lambda d: d.update(start="nope")), "start: node 'nope' does not exist"),
        (broken(lambda d: d["nodes"]["menu"].update(type="gathr")), "node 'menu'"),
        (
            broken(lambda d: d["nodes"]["menu"].update(num_digits=0)),
            "node 'menu': num_digits: Input should be greater than or equal to 1",
        ),
        (
            broken(lambda d: d["nodes"]["menu"]["routes"].update({"x": {"next": "statement"}})),
            "route key 'x' is not a keypress string",
        ),
        (
            broken(lambda d: d["nodes"]["statement"].update(colour="red")),
            "node 'statement': colour: Extra inputs are not permitted",
        ),
        (
            broken(
                lambda d: (
                    d["nodes"].update(loop={"type": "say", "prompts": ["goodbye"], "next": "loop"})
                    or d["nodes"]["check_scope"]["cases"].update(loop="loop")
                )
            ),
            "node 'loop': no path from it reaches a hangup or transfer",
        ),
        (broken(lambda d: d["prompts"].update(menu="按{1键")), "prompt 'menu': bad placeholder"),
    ],
)
def test_malformed_flow_named(tmp_path: Path, data: dict, message: str) -> None:  # type: ignore[type-arg]
    path = write(tmp_path, data)
    with pytest.raises(FlowError) as err:
        load_flow(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    p = tmp_path / "inbound.yaml"
    p.write_text("name: inbound\nnodes: {greeting: [\n", encoding="utf-8")
    with pytest.raises(FlowError, match=r"inbound\.yaml:\d+:\d+: not valid YAML"):
        load_flow(p)


def test_unregistered_action_is_refused() -> None:
    f = load_flow(ROOT / "callflows" / "inbound.yaml")
    with pytest.raises(
        FlowError, match=r"actions not registered by the application: \['create_draft'\]"
    ):
        Engine(f, {})


def test_flow_category_must_be_configured(tmp_path: Path, settings: Settings) -> None:
    data = broken(lambda d: d["nodes"]["menu"]["routes"]["2"]["set"].update(category="投拆"))
    (tmp_path / "callflows").mkdir()
    write(tmp_path / "callflows", data)
    (tmp_path / "callflows" / "survey.yaml").write_text(
        (ROOT / "callflows" / "survey.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    s = settings.model_copy(update={"base_dir": tmp_path})
    with pytest.raises(FlowError, match="node 'menu': category '投拆' is not configured"):
        load_flows(s)


def test_shipped_flows_load(settings: Settings) -> None:
    flows = load_flows(settings)
    assert set(flows) == {"inbound", "survey"}


def test_only_the_inbound_flow_is_interrupted_by_emergencies() -> None:
    from .flowkit import flow

    assert flow("inbound").handles_emergencies()
    assert not flow("survey").handles_emergencies()
