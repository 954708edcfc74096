"""Audio conversion: G.711 and 8-bit decoding, the resampler, WAV reading, the VAD."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ivr.asr.audio import (
    AudioError,
    PcmConverter,
    Resampler,
    convert,
    decode,
    read_wav,
    read_wav_header,
    resample,
)
from ivr.asr.vad import EnergyVad

from .asr_fixtures import ffmpeg, speech_file, wav_bytes


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, float) ** 2) + 1e-20))


# -- decoding ------------------------------------------------------------------


def test_g711_and_8bit_known_values() -> None:
    ulaw = decode(bytes([0xFF, 0x7F, 0x80, 0x00]), "ulaw")
    assert ulaw.tolist() == [0, 0, 32124, -32124]
    alaw = decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "alaw")
    assert alaw.tolist() == [8, -8, 32256, -32256]
    u8 = decode(bytes([0x80, 0x00, 0xFF, 0x81]), "u8")
    assert u8.tolist() == [0, -32768, 32512, 256]


@pytest.mark.parametrize("fmt", ["mulaw", "alaw", "u8"])
def test_decoding_matches_ffmpeg_for_every_byte(tmp_path, fmt) -> None:
    raw = tmp_path / "all.raw"
    raw.write_bytes(bytes(range(256)))
    ref = ffmpeg("-f", fmt, "-ar", "8000", "-ac", "1", "-i", str(raw), "-f", "s16le", "-")
    ours = decode(bytes(range(256)), {"mulaw": "ulaw"}.get(fmt, fmt))
    assert ours.tolist() == np.frombuffer(ref, "<i2").tolist()


def test_s16le_needs_whole_samples_but_converter_carries_odd_bytes() -> None:
    with pytest.raises(ValueError):
        decode(b"\x01\x02\x03", "s16le")
    data = np.arange(-500, 500, dtype="<i2").tobytes()
    conv = PcmConverter("s16le", 16000, 16000)
    out = b"".join(conv.convert(data[i : i + 7]) for i in range(0, len(data), 7)) + conv.flush()
    assert out == data


def test_unknown_format_and_rate_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        PcmConverter("gsm", 8000, 16000)
    with pytest.raises(ValueError, match="sample rate"):
        PcmConverter("ulaw", 0, 16000)


# -- resampling ----------------------------------------------------------------


def test_upsampled_1khz_sine_keeps_its_frequency_without_imaging() -> None:
    fs_in, fs_out, f0 = 8000, 16000, 1000.0
    n = fs_in * 2
    x = 10000 * np.sin(2 * np.pi * f0 * np.arange(n) / fs_in)
    y = resample(x, fs_in, fs_out).astype(float)
    assert len(y) == 2 * n
    # Delay compensated: the output is the same sine sampled at 16 kHz (edges aside).
    ideal = 10000 * np.sin(2 * np.pi * f0 * np.arange(len(y)) / fs_out)
    middle = slice(1000, len(y) - 1000)
    assert np.max(np.abs(y[middle] - ideal[middle])) < 10000 * 0.002
    seg = y[middle] * np.hanning(len(y[middle]))
    spectrum = np.abs(np.fft.rfft(seg)) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1 / fs_out)
    assert abs(freqs[np.argmax(spectrum)] - f0) < 2
    above = spectrum[freqs > 4000].sum() / spectrum.sum()
    assert 10 * np.log10(above) < -80  # the 7 kHz image is gone


def test_downsampling_removes_what_the_lower_rate_cannot_hold() -> None:
    t = np.arange(16000) / 16000
    tone_6k = 10000 * np.sin(2 * np.pi * 6000 * t)
    tone_1k = 10000 * np.sin(2 * np.pi * 1000 * t)
    assert _rms_db(resample(tone_6k, 16000, 8000)[200:-200]) < _rms_db(tone_6k) - 70
    assert abs(_rms_db(resample(tone_1k, 16000, 8000)[200:-200]) - _rms_db(tone_1k)) < 0.1


@pytest.mark.parametrize(("rate_in", "rate_out"), [(8000, 16000), (44100, 16000), (48000, 8000)])
def test_streaming_resampler_output_does_not_depend_on_chunking(rate_in, rate_out) -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(rate_in) * 3000).astype(np.int16)
    whole = resample(x, rate_in, rate_out)
    r = Resampler(rate_in, rate_out)
    parts, pos = [], 0
    while pos < len(x):
        step = int(rng.integers(1, 400))
        parts.append(r.process(x[pos : pos + step]))
        pos += step
    parts.append(r.process([], final=True))
    streamed = np.clip(np.rint(np.concatenate(parts)), -32768, 32767).astype(np.int16)
    assert len(whole) == -(-len(x) * rate_out // rate_in)
    assert np.array_equal(streamed, whole)


def test_mu_law_packets_convert_like_the_whole_recording() -> None:
    wav = read_wav(speech_file("hotline/h12_8k_ulaw.wav"))
    conv = PcmConverter("ulaw", 8000, 16000)
    packets = [wav.data[i : i + 160] for i in range(0, len(wav.data), 160)]
    streamed = b"".join(conv.convert(p) for p in packets) + conv.flush()
    assert streamed == convert(wav.data, "ulaw", 8000, 16000)
    assert len(streamed) == 2 * 2 * len(wav.data)


# -- WAV -----------------------------------------------------------------------


def test_read_mu_law_wav_matches_ffmpeg() -> None:
    path = speech_file("hotline/h01_8k_ulaw.wav")
    wav = read_wav(path)
    assert (wav.input_format, wav.sample_rate) == ("ulaw", 8000)
    assert wav.seconds == pytest.approx(5.2, abs=0.01)
    ref = ffmpeg("-i", str(path), "-f", "s16le", "-c:a", "pcm_s16le", "-")
    assert decode(wav.data, "ulaw").tobytes() == ref


def test_read_16bit_and_8bit_and_stereo_wav(tmp_path) -> None:
    samples = np.array([0, 1000, -1000, 32767], dtype="<i2")
    (tmp_path / "a.wav").write_bytes(wav_bytes(samples.tobytes(), 16000))
    wav = read_wav(tmp_path / "a.wav")
    assert (wav.input_format, wav.sample_rate, wav.data) == ("s16le", 16000, samples.tobytes())
    (tmp_path / "b.wav").write_bytes(wav_bytes(bytes([0x80, 0x90]), 8000, bits=8))
    assert read_wav(tmp_path / "b.wav").input_format == "u8"
    stereo = np.array([100, 300, -100, -300], dtype="<i2").tobytes()
    (tmp_path / "c.wav").write_bytes(wav_bytes(stereo, 8000, channels=2))
    wav = read_wav(tmp_path / "c.wav")
    assert wav.input_format == "s16le"
    assert np.frombuffer(wav.data, "<i2").tolist() == [200, -200]


def test_streamed_wav_header_with_unknown_size() -> None:
    data = np.arange(100, dtype="<i2").tobytes()
    head = bytearray(wav_bytes(data, 8000))
    head[4:8] = b"\xff\xff\xff\xff"
    head[40:44] = b"\xff\xff\xff\xff"  # what ffmpeg writes to a pipe
    info = read_wav_header(io.BytesIO(bytes(head)))
    assert (info.input_format, info.sample_rate, info.data_bytes) == ("s16le", 8000, None)


def test_bad_wav_files_give_a_clear_error(tmp_path) -> None:
    (tmp_path / "text.wav").write_text("hello, not audio")
    with pytest.raises(AudioError, match="not a WAV file"):
        read_wav(tmp_path / "text.wav")
    (tmp_path / "float.wav").write_bytes(wav_bytes(b"\0" * 8, 16000, tag=3, bits=32))
    with pytest.raises(AudioError, match="unsupported WAV encoding"):
        read_wav(tmp_path / "float.wav")
    with pytest.raises(AudioError, match="cannot read"):
        read_wav(tmp_path / "missing.wav")


# -- voice activity ------------------------------------------------------------


def _tone(seconds: float, level: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return level * np.sin(2 * np.pi * 440 * t)


def test_vad_finds_speech_and_measures_trailing_silence() -> None:
    vad = EnergyVad(16000)
    vad.process(np.zeros(8000))
    assert not vad.speech_started and vad.trailing_silence == pytest.approx(0.5)
    vad.process(_tone(1.0, 5000))
    vad.process(np.zeros(16000 * 2))
    assert vad.speech_started
    assert vad.last_speech_end == pytest.approx(1.5, abs=0.02)
    assert vad.trailing_silence == pytest.approx(2.0, abs=0.02)


def test_vad_ignores_steady_noise_clicks_and_dc() -> None:
    rng = np.random.default_rng(1)
    vad = EnergyVad(16000)
    vad.process(rng.standard_normal(16000 * 3) * 300)  # -40 dBFS hiss
    click = np.zeros(1600)
    click[:160] = 20000
    vad.process(click)
    vad.process(np.full(16000, -32768.0))  # pyVoIP's 0x00 gap filler: DC only
    assert not vad.speech_started
    vad.process(rng.standard_normal(16000) * 300 + _tone(1.0, 3000))  # talking over the hiss
    assert vad.speech_started
