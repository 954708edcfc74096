"""Prompt audio: every text a caller can hear has a committed 8 kHz clip, and prompts decompose."""

from __future__ import annotations

import array
import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import wave
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from ivr.config import Settings
from ivr.flow import load_flow, render
from ivr.prompts import (
    DAY_CLIPS,
    DIGIT_CLIPS,
    MANIFEST,
    MONTH_CLIPS,
    PAUSE_FILE,
    PromptLibrary,
    clip_name,
    concat_pcm,
    read_pcm,
    required_texts,
    template_segments,
)
from ivr.spoken import date_spoken, digits_spoken

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "callflows"
PROMPTS = FLOWS / "prompts"

TICKET = "12345-20261122-00042"
READBACK_VARS = {
    "ticket_no_spoken": digits_spoken(TICKET),
    "contact_due_spoken": date_spoken(date(2026, 11, 24)),
    "due_date_spoken": date_spoken(date(2026, 12, 14)),
}


@pytest.fixture(scope="module")
def lib() -> PromptLibrary:
    return PromptLibrary.from_config_file(ROOT / "config.yaml")


def template(flow: str, prompt: str) -> str:
    return load_flow(FLOWS / f"{flow}.yaml").prompts[prompt]


def names(lib: PromptLibrary, clips: list[Path]) -> list[str]:
    """Clips as the texts they say ("|" for the pause), to compare sequences readably."""
    by_file = {clip_name(t): t for t in lib.required}
    return ["|" if p.name == PAUSE_FILE else by_file[p.name] for p in clips]


# ---- which texts must exist --------------------------------------------------------


def test_template_segments_split_at_fields_and_drop_bare_punctuation() -> None:
    assert template_segments(template("inbound", "readback")) == [
        "您的诉求已记录，工单号是",
        "。我们将在",
        "前与您联系，办理期限至",
    ]
    assert template_segments("{greeting}") == []
    assert template_segments("请按{{井号}}键。") == ["请按{井号}键。"]


def test_required_texts_cover_flows_config_digits_and_dates(
    lib: PromptLibrary, base_settings: Settings
) -> None:
    req = lib.required
    assert set(DIGIT_CLIPS) | set(MONTH_CLIPS) | set(DAY_CLIPS) <= req
    assert len(MONTH_CLIPS) == 12 and len(DAY_CLIPS) == 31
    for line in base_settings.lines:
        assert line.name in req and line.greeting in req
    for rule in base_settings.scope_rules:
        assert rule.advice in req
    for flow in ("inbound", "survey"):
        for text in load_flow(FLOWS / f"{flow}.yaml").prompts.values():
            assert set(template_segments(text)) <= req
    assert "。" not in req and "" not in req
    # The service's settings and the render script's raw YAML agree on the set.
    assert PromptLibrary.from_settings(base_settings).required == req
    assert required_texts(FLOWS, {}) <= req  # default flow names, no config texts


def test_every_required_text_has_a_committed_clip(lib: PromptLibrary) -> None:
    """What the service reports at start: nothing missing for the shipped flows and config."""
    assert lib.missing() == [], "run `make prompts` and commit callflows/prompts/"


def test_missing_names_a_removed_clip(lib: PromptLibrary, tmp_path: Path) -> None:
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS, copy)
    local = PromptLibrary(copy, lib.required)
    assert local.missing() == []
    (copy / clip_name("前与您联系，办理期限至")).unlink()
    (copy / PAUSE_FILE).unlink()
    assert local.missing() == ["前与您联系，办理期限至", PAUSE_FILE]


def test_render_script_check_passes_in_the_app_environment() -> None:
    """`render_prompts.py --check` needs no TTS: the committed clips match the texts."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_prompts.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the committed audio -----------------------------------------------------------


def test_no_stale_clips_and_manifest_matches(lib: PromptLibrary) -> None:
    wanted = {clip_name(t) for t in lib.required} | {PAUSE_FILE}
    assert {p.name for p in PROMPTS.glob("*.wav")} == wanted
    manifest = json.loads((PROMPTS / MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest) == set(lib.required)
    for text, entry in manifest.items():
        assert entry["file"] == clip_name(text)
        assert entry["sha1"] == hashlib.sha1(text.encode("utf-8")).hexdigest()
        assert entry["sha1"].startswith(entry["file"].removesuffix(".wav"))


def test_each_clip_is_8k_mono_16bit_audible_and_of_sane_length(lib: PromptLibrary) -> None:
    for text in sorted(lib.required):
        path = lib.path_for(text)
        with wave.open(str(path), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), text
            assert w.getcomptype() == "NONE"
            seconds = w.getnframes() / w.getframerate()
        assert 0.2 <= seconds <= 15, (text, seconds)
        samples = array.array("h", read_pcm(path))
        peak = max(abs(s) for s in samples)
        rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
        assert peak > 32767 * 0.5, (text, peak)  # normalized to about -3 dBFS
        assert rms > 32767 * 0.02, (text, rms)


def test_pause_clip_is_300_ms_of_silence(lib: PromptLibrary) -> None:
    pcm = read_pcm(lib.pause)
    assert len(pcm) == 8000 * 2 * 3 // 10
    assert set(pcm) == {0}


# ---- decomposing a prompt ----------------------------------------------------------


def test_readback_decomposes_into_literal_digit_and_date_clips(lib: PromptLibrary) -> None:
    clips = lib.clips_for(template("inbound", "readback"), READBACK_VARS)
    said = names(lib, clips)
    assert said == [
        "您的诉求已记录，工单号是",
        *"幺二三四五",
        "|",
        *"二零二六幺幺二二",
        "|",
        *"零零零四二",
        "|",
        "。我们将在",
        "11月",
        "24日",
        "前与您联系，办理期限至",
        "12月",
        "14日",
    ]
    assert sum(1 for s in said if s in DIGIT_CLIPS) == 18
    assert all(p.is_file() for p in clips)
    # A transport that only has the Say verb's rendered text gets the same clips.
    text = render(template("inbound", "readback"), READBACK_VARS)
    assert lib.clips_for_text(text) == clips


def test_readback_concatenates_to_one_pcm_stream(lib: PromptLibrary) -> None:
    clips = lib.clips_for(template("inbound", "readback"), READBACK_VARS)
    pcm = concat_pcm(clips)
    assert len(pcm) == sum(len(read_pcm(p)) for p in clips)
    assert 8 < len(pcm) / 16000 < 40  # seconds of 8 kHz 16-bit audio


def test_survey_intro_uses_the_line_name_clip(lib: PromptLibrary, base_settings: Settings) -> None:
    line = base_settings.lines[1]
    variables = {"line_name": line.name, "ticket_no_spoken": digits_spoken("12315-1")}
    said = names(lib, lib.clips_for(template("survey", "intro"), variables))
    assert said == [
        "您好，这里是",
        line.name,
        "|",
        "。您反映的问题，工单号",
        *"幺二三幺五",
        "|",
        "幺",
        "|",
        "，已办理完毕，现在进行满意度回访。",
    ]


def test_whole_value_prompts_greeting_and_advice(
    lib: PromptLibrary, base_settings: Settings
) -> None:
    line = base_settings.lines[0]
    assert lib.clips_for("{greeting}", {"greeting": line.greeting}) == [lib.path_for(line.greeting)]
    advice = base_settings.scope_rules[0].advice
    assert lib.clips_for("{scope_advice}", {"scope_advice": advice}) == [lib.path_for(advice)]
    assert lib.clips_for("{scope_advice}", {"scope_advice": ""}) == []
    assert lib.clips_for("{scope_advice}", {}) == []


def test_unknown_text_is_logged_and_skipped_never_raised(
    lib: PromptLibrary, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ivr.prompts"):
        said = names(lib, lib.clips_for("您好，这里是{line_name}", {"line_name": "火星热线"}))
        assert lib.clips_for("坏模板{", {}) == []
    assert said == ["您好，这里是"]
    assert "火星热线" in caplog.text and "坏模板" in caplog.text


def test_missing_clip_file_is_skipped_during_a_call(
    lib: PromptLibrary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS, copy)
    (copy / clip_name("三")).unlink()
    (copy / clip_name("四")).write_bytes(b"not a wave file")
    local = PromptLibrary(copy, lib.required)
    with caplog.at_level(logging.WARNING, logger="ivr.prompts"):
        clips = local.clips_for("{n}", {"n": "二三四"})
        pcm = concat_pcm(clips)
    assert [p.name for p in clips] == [clip_name("二"), clip_name("四")]
    assert pcm == read_pcm(copy / clip_name("二"))
    assert "'三'" in caplog.text and "cannot read WAV" in caplog.text


# ---- the render script's text preparation (no TTS needed) ---------------------------


def _render_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_prompts", ROOT / "scripts/render_prompts.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tts_text_reads_numbers_as_a_hotline_does() -> None:
    tts_text = _render_script().tts_text
    assert tts_text("如遇警情请立即拨打110报警。") == "如遇警情请立即拨打幺幺零报警"
    assert tts_text("欢迎致电12345热线") == "欢迎致电幺二三四五热线"
    assert tts_text("咨询请按1，人工服务请按0。") == "咨询请按一，人工服务请按零"
    assert [tts_text(t) for t in ("11月", "24日", "1日", "10日", "30日")] == [
        "十一月",
        "二十四日",
        "一日",
        "十日",
        "三十日",
    ]
    assert tts_text("。我们将在") == "我们将在"
