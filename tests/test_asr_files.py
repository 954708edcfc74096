"""Transcribing recordings on disk: formats, long files, broken files."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.asr import files
from ivr.asr.audio import AudioError, decode
from ivr.asr.files import open_audio, transcribe_file
from ivr.asr.models import LoadedModel

from .asr_fixtures import ffmpeg, load_ko_model, need_ffmpeg, speech_file, wav_bytes


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return load_ko_model()


def _pcm(path) -> tuple[str, int, np.ndarray]:
    with open_audio(path) as (info, chunks):
        return info.input_format, info.sample_rate, decode(b"".join(chunks), info.input_format)


def test_mp3_recording_is_transcribed(model, tmp_path) -> None:
    mp3 = tmp_path / "twilio-recording.mp3"
    ffmpeg("-i", str(speech_file("hotline/h12.wav")), "-c:a", "libmp3lame", "-b:a", "64k", str(mp3))
    result = transcribe_file(mp3, model)
    assert result.text
    assert result.audio_seconds == pytest.approx(2.55, abs=0.1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"\x00garbage\xff" * 500, "cannot decode audio"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "cannot decode audio"),
        ("这不是录音".encode() * 100, "cannot decode audio"),
    ],
    ids=["empty", "garbage", "cut-header", "text"],
)
def test_broken_files_raise_a_clear_audio_error(model, tmp_path, content, message) -> None:
    need_ffmpeg()
    path = tmp_path / "recording.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        transcribe_file(path, model)
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_wav_without_samples_and_missing_files(model, tmp_path) -> None:
    need_ffmpeg()
    header_only = tmp_path / "header-only.wav"
    header_only.write_bytes(wav_bytes(b"", 8000))
    with pytest.raises(AudioError, match="contains no audio samples"):
        transcribe_file(header_only, model)
    with pytest.raises(AudioError, match="cannot read"):
        transcribe_file(tmp_path / "missing.wav", model)
    with pytest.raises(AudioError, match="is a folder"):
        transcribe_file(tmp_path, model)


def test_long_files_are_read_in_bounded_chunks(tmp_path) -> None:
    long = tmp_path / "one-hour.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "3600", "-c:a", "pcm_mulaw", str(long)
    )
    total, biggest = 0, 0
    with open_audio(long) as (info, chunks):
        assert (info.input_format, info.sample_rate) == ("s16le", 8000)
        for chunk in chunks:
            total += len(chunk)
            biggest = max(biggest, len(chunk))
    assert total == 3600 * 8000 * 2
    assert biggest <= 8000 * 2 * files.CHUNK_SECONDS


def test_stereo_and_other_rates_are_mixed_down_by_ffmpeg(tmp_path) -> None:
    stereo = tmp_path / "stereo.wav"
    frames = np.array([[1000, 3000]] * 4410, dtype="<i2")
    stereo.write_bytes(wav_bytes(frames.tobytes(), 44100, channels=2))
    fmt, rate, samples = _pcm(stereo)
    assert (fmt, rate, len(samples)) == ("s16le", 44100, 4410)
    assert set(samples.tolist()) == {2000}


def test_without_ffmpeg_wav_files_are_still_read(monkeypatch, tmp_path) -> None:
    path = speech_file("hotline/h12_8k_ulaw.wav")
    with_ffmpeg = _pcm(path)
    monkeypatch.setattr(files.shutil, "which", lambda name: None)
    without = _pcm(path)
    assert without[0] == "ulaw" and with_ffmpeg[0] == "s16le"
    assert np.array_equal(without[2], with_ffmpeg[2])
    mp3 = tmp_path / "x.mp3"
    mp3.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(AudioError, match="apt-get install ffmpeg"):
        _pcm(mp3)
