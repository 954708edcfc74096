"""config.yaml is validated at start; a bad file names file, key path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ivr.cli import main
from ivr.config import ConfigError, load_config

from .conftest import ROOT


def write_config(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_config_is_valid_and_complete() -> None:
    s = load_config(ROOT / "config.yaml", env={})
    assert s.timezone == "Asia/Shanghai"
    numbers = {ln.number for ln in s.lines}
    assert {
        "12345",
        "12315",
        "12331",
        "12319",
        "12320",
        "12333",
        "12369",
        "12358",
        "96128",
    } <= numbers
    deadlines = {c.name: c.deadline_workdays for c in s.categories}
    assert deadlines == {"咨询": 5, "投诉": 15, "求助": 15, "建议": 15, "举报": 15}
    assert s.deadlines.contact_workdays == 2 and s.deadlines.urgent_same_day
    kinds = {r.kind for r in s.scope_rules}
    assert kinds == {"emergency", "out_of_scope"}
    advice = " ".join(r.advice for r in s.scope_rules if r.kind == "emergency")
    for number in ("110", "119", "120", "122"):
        assert number in advice


def test_database_url_comes_from_environment(tmp_path: Path) -> None:
    s = load_config(ROOT / "config.yaml", env={"DATABASE_URL": "postgresql+psycopg://x@h/db"})
    assert s.resolved_database_url == "postgresql+psycopg://x@h/db"
    s = load_config(ROOT / "config.yaml", env={})
    assert s.resolved_database_url == f"sqlite:///{ROOT / 'var' / 'ivr.sqlite3'}"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["lines"][2].update(default_category="咨讯"),
            "lines[2].default_category: '咨讯' is not one of the configured categories",
        ),
        (lambda d: d.update(timezone="Asia/Peking"), "timezone: unknown time zone 'Asia/Peking'"),
        (
            lambda d: d["categories"][0].update(deadline_workdays=-1),
            "categories[0].deadline_workdays: Input should be greater than or equal to 0",
        ),
        (
            lambda d: d.update(twilio_auth_token="secret"),
            "twilio_auth_token: Extra inputs are not permitted",
        ),
        (lambda d: d["lines"][0].update(number="12345abc"), "lines[0].number:"),
        (lambda d: d["lines"].append(dict(d["lines"][1])), "lines: '12315' is listed twice"),
        (lambda d: d.update(hotline="10000"), "hotline: '10000' must also be listed under lines"),
        (lambda d: d["scope_rules"][0].update(kind="maybe"), "scope_rules[0].kind:"),
        (lambda d: d.pop("city"), "city: Field required"),
        (
            lambda d: d["sip"].update(outbound_trunk={"host": "203.0.113.5:5080"}),
            "sip.outbound_trunk.host: '203.0.113.5:5080': give the host alone",
        ),
        (
            lambda d: d["sip"].update(outbound_trunk={"host": "trunk.example", "port": 0}),
            "sip.outbound_trunk.port: Input should be greater than or equal to 1",
        ),
        (
            lambda d: d["sip"].update(
                outbound_trunk={"host": "trunk.example", "transport": "sctp"}
            ),
            "sip.outbound_trunk.transport: Input should be 'udp' or 'tcp'",
        ),
        (
            lambda d: d["sip"].update(outbound_trunk={"port": 5080}),
            "sip.outbound_trunk.host: Field required",
        ),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    assert message.startswith(str(path.resolve()) + ": ")
    assert expected in message


def test_outbound_trunk_with_port_and_transport(tmp_path: Path) -> None:
    trunk = {"host": "trunk.example", "port": 5080, "transport": "tcp"}
    path = write_config(tmp_path, lambda d: d["sip"].update(outbound_trunk=trunk))
    cfg = load_config(path, env={}).sip.outbound_trunk
    assert cfg is not None and cfg.hostport == "trunk.example:5080;transport=tcp"
    path = write_config(tmp_path, lambda d: d["sip"].update(outbound_trunk={"host": "10.0.0.7"}))
    cfg = load_config(path, env={}).sip.outbound_trunk
    assert cfg is not None and cfg.hostport == "10.0.0.7:5060"


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("timezone: Asia/Shanghai\nlines: [\n  - number: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.yaml:\d+:\d+: not valid YAML"):
        load_config(path, env={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", env={})


def test_cli_fails_at_start_with_one_clear_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, lambda d: d["lines"][0].update(default_department="无此部门"))
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert "lines[0].default_department: '无此部门' is not one of the configured" in result.output
    assert "Traceback" not in result.output


def test_cli_check_accepts_shipped_config() -> None:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "config.yaml"), "check"])
    assert result.exit_code == 0, result.output
    assert "config ok" in result.output
