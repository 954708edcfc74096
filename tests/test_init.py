"""`ivr init [DIR]` and where config.yaml and the shipped files are found."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import ivr.config
from ivr import shipped
from ivr.asr.models import DEFAULT_MANIFEST, load_manifest
from ivr.cli import main
from ivr.config import DEFAULT_CONFIG, ConfigError, find_config, load_config

from .conftest import ROOT


def _init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["init", *args], env={"IVR_CONFIG": None})
    return result.exit_code, result.output


def test_in_a_checkout_the_shipped_files_are_the_repository_s() -> None:
    assert shipped.source_root() == ROOT
    assert DEFAULT_CONFIG == ROOT / "config.yaml"
    assert DEFAULT_MANIFEST == ROOT / "asr_models" / "manifest.yaml"
    assert shipped.shipped("callflows") == ROOT / "callflows"
    assert "vosk-model-small-cn-0.22" in load_manifest()


def test_init_writes_a_deployment_that_loads(tmp_path: Path) -> None:
    target = tmp_path / "hotline"
    code, out = _init(str(target))
    assert code == 0, out
    assert "Next steps" in out and f"cd {target}" in out and "ivr db upgrade" in out
    config = target / "config.yaml"
    assert config.read_text(encoding="utf-8").endswith(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert (target / "var").is_dir()
    assert (target / "callflows" / "inbound.yaml").read_bytes() == (
        ROOT / "callflows" / "inbound.yaml"
    ).read_bytes()
    clips = sorted(p.name for p in (ROOT / "callflows" / "prompts").iterdir())
    assert sorted(p.name for p in (target / "callflows" / "prompts").iterdir()) == clips
    settings = load_config(config, env={})
    # Every relative path lands in the deployment folder.
    assert settings.base_dir == target
    assert settings.resolved_database_url == f"sqlite:///{target}/var/ivr.sqlite3"
    assert settings.flows_path == target / "callflows"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert _init(str(tmp_path))[0] == 0
    config = tmp_path / "config.yaml"
    config.write_text("# mine\n", encoding="utf-8")
    (tmp_path / "callflows" / "inbound.yaml").write_text("# my flow\n", encoding="utf-8")
    code, out = _init(str(tmp_path))
    assert code == 2 and "--force" in out
    assert config.read_text(encoding="utf-8") == "# mine\n"
    code, out = _init(str(tmp_path), "--force")
    assert code == 0, out
    assert "# mine" not in config.read_text(encoding="utf-8")
    assert "callflows/    kept" in out  # edited flows are never overwritten
    assert (tmp_path / "callflows" / "inbound.yaml").read_text(encoding="utf-8") == "# my flow\n"


def test_init_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = _init()
    assert code == 0, out
    assert (tmp_path / "config.yaml").is_file() and "cd " not in out


def test_config_is_found_in_the_current_folder_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _init(str(tmp_path))[0] == 0
    monkeypatch.chdir(tmp_path)
    assert find_config(env={}) == tmp_path / "config.yaml"
    assert find_config(env={"IVR_CONFIG": str(ROOT / "config.yaml")}) == ROOT / "config.yaml"
    assert find_config("other.yaml", env={}) == Path("other.yaml")


def test_without_a_config_a_checkout_uses_its_own_and_an_install_says_ivr_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(env={}) == DEFAULT_CONFIG
    monkeypatch.setattr(ivr.config, "source_root", lambda: None)  # as in an installed wheel
    with pytest.raises(ConfigError, match="ivr init"):
        load_config(env={})


def test_the_build_hook_ships_what_ivr_shipped_looks_for() -> None:
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    (names,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "SHIPPED_FILES" for t in node.targets)
    ]
    assert tuple(names) == shipped.SHIPPED_FILES
    for name in names:
        assert (ROOT / name).exists(), name
