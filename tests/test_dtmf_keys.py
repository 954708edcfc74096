"""Keys without RFC 2833: SIP INFO bodies, and DTMF tones found in the audio."""

from __future__ import annotations

import random
import struct
import wave
from pathlib import Path

import pytest

from harness.data import SPEECH
from harness.sipkit.pcap import PCMU, RtpStream, wav_to_ulaw
from ivr.asr import audio as g711
from ivr.shipped import shipped
from ivr.transports.sip.dtmf import DtmfInfoError, InbandDtmf, info_digit

KEYS = "123A456B789C*0#D"


def received_pcm(stream: RtpStream) -> bytes:
    """What the IVR decodes from the stream's audio packets (8 kHz 16-bit PCM)."""
    return b"".join(g711.ulaw2lin(p.payload) for p in stream.packets if p.payload_type == PCMU)


def keys_heard(pcm: bytes, chunk: int = 320) -> str:
    heard: list[str] = []
    detector = InbandDtmf(heard.append)
    for i in range(0, len(pcm), chunk):  # as RTP delivers it: 20 ms at a time
        detector.feed(pcm[i : i + chunk])
    return "".join(heard)


def test_every_key_is_heard_once_in_order() -> None:
    stream = RtpStream().silence(200).tones(KEYS, duration_ms=60, gap_ms=60)
    assert keys_heard(received_pcm(stream)) == KEYS


def test_a_held_key_is_one_key_and_a_repeated_key_is_two() -> None:
    stream = RtpStream().tones("5", duration_ms=1500, gap_ms=60).tones("55", duration_ms=80)
    assert keys_heard(received_pcm(stream)) == "555"


def test_quiet_keys_with_twist_on_a_noisy_line_are_heard() -> None:
    """-26 dBFS per tone, the column tone 4 dB below the row tone, noise 15 dB down."""
    rng = random.Random(7)
    level = 0.05
    pcm = bytearray()
    for key in "19#":
        stream = RtpStream().tones(key, duration_ms=70, gap_ms=0, level=level, twist_db=4)
        pcm += received_pcm(stream) + b"\x00" * 800
    noise_amp = 32767 * level * 10 ** (-15 / 20)
    samples = struct.unpack(f"<{len(pcm) // 2}h", bytes(pcm))
    noisy = [max(-32768, min(32767, round(s + rng.gauss(0, noise_amp)))) for s in samples]
    assert keys_heard(struct.pack(f"<{len(noisy)}h", *noisy)) == "19#"


def _speech_files() -> list[Path]:
    return sorted(SPEECH.rglob("*_8k_ulaw.wav"))


def _prompt_files() -> list[Path]:
    return sorted(shipped("callflows/prompts").glob("*.wav"))


@pytest.mark.parametrize("path", _speech_files(), ids=lambda p: p.name)
def test_speech_gives_no_key(path: Path) -> None:
    assert keys_heard(g711.ulaw2lin(wav_to_ulaw(path))) == ""


def test_the_prompts_give_no_key() -> None:
    """The IVR's own prompts (which an echoing line sends back) are no keys either."""
    prompts = _prompt_files()
    assert prompts
    for path in prompts:
        with wave.open(str(path)) as w:
            assert w.getframerate() == 8000 and w.getsampwidth() == 2
            pcm = w.readframes(w.getnframes())
        assert keys_heard(pcm) == "", path.name


@pytest.mark.parametrize(
    ("content_type", "body", "key"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"Signal= #\r\nDuration= 250", "#"),
        ("Application/DTMF-Relay; charset=utf-8", b"Duration=100\nSignal=11\n", "#"),
        ("application/dtmf-relay", b"Signal=10\r\n", "*"),
        ("application/dtmf", b"7", "7"),
        ("application/dtmf", b"a\r\n", "A"),
        ("application/media_control+xml", b"<media_control/>", None),
        ("", b"", None),
    ],
)
def test_info_bodies(content_type: str, body: bytes, key: str | None) -> None:
    assert info_digit(content_type, body) == key


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/dtmf-relay", b"Duration=160\r\n"),
        ("application/dtmf-relay", b"Signal=x\r\n"),
        ("application/dtmf", b""),
    ],
)
def test_info_without_a_key_is_an_error(content_type: str, body: bytes) -> None:
    with pytest.raises(DtmfInfoError):
        info_digit(content_type, body)
