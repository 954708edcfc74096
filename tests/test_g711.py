"""The one G.711 / PCM implementation (ivr.asr.audio) gives the bytes `audioop` gave.

`audioop` was removed in Python 3.13. The SIP tests compare prompts and recordings
byte for byte, so the replacement must be exact: on Python <= 3.12 every function is
compared with audioop on all 65536 16-bit inputs (or many random buffers); on every
version it is compared with fixed vectors recorded from audioop on Python 3.11.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import warnings

import numpy as np
import pytest

from ivr.asr import audio

ALL_PCM16 = np.arange(65536, dtype=np.uint16).astype("<u2").tobytes()  # every 16-bit sample
ALL_BYTES = bytes(range(256))
RATES = [(16000, 8000), (44100, 8000), (22050, 8000), (11025, 8000), (48000, 8000)]
RATES += [(8000, 16000), (8000, 44100), (8000, 8000), (7999, 8000), (3, 4)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def _test_signal() -> bytes:
    t = np.arange(441)
    return (np.sin(t * 0.37) * 20000 + (t * 37 % 2001) - 1000).astype("<i2").tobytes()


# -- fixed vectors (recorded from audioop, Python 3.11): run everywhere -----------------------


def test_encoders_match_the_recorded_tables_for_all_65536_inputs() -> None:
    assert _sha(audio.lin2ulaw(ALL_PCM16)) == (
        "617fa4850d68d3906597e949f7625fb2fc46db479e29707f33159b3d131721cb"
    )
    assert _sha(audio.lin2alaw(ALL_PCM16)) == (
        "f77c76aa923ee25617453f87514828a12896227f82ff383bf3bb53d6ac7c2a0f"
    )


def test_decoders_match_the_recorded_tables() -> None:
    assert _sha(audio.ulaw2lin(ALL_BYTES)) == (
        "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827"
    )
    assert _sha(audio.alaw2lin(ALL_BYTES)) == (
        "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174"
    )


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (1, 0xFF, 0xD5),
        (-1, 0x7E, 0x55),
        (100, 0xF2, 0xD3),
        (-100, 0x72, 0x53),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
    ],
)
def test_known_samples(sample: int, ulaw: int, alaw: int) -> None:
    assert audio.lin2ulaw(_pcm(sample)) == bytes([ulaw])
    assert audio.lin2alaw(_pcm(sample)) == bytes([alaw])
    assert audio.encode(np.array([sample], dtype=np.int16), "ulaw") == bytes([ulaw])


def test_silence_and_round_trip() -> None:
    assert audio.lin2ulaw(bytes(320)) == b"\xff" * 160
    assert audio.lin2alaw(bytes(320)) == b"\xd5" * 160
    # Decoding then encoding any code gives the code back (the two zeros aside).
    for enc, dec, zeros in (
        (audio.lin2ulaw, audio.ulaw2lin, {0x7F, 0xFF}),
        (audio.lin2alaw, audio.alaw2lin, set()),
    ):
        again = enc(dec(ALL_BYTES))
        assert [a for a, b in zip(again, ALL_BYTES, strict=True) if a != b and b not in zeros] == []


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "digest", "size"),
    [
        (44100, 8000, "7f134f6967d5af56e88a9e8294e5cc7483758aa790c71e2c563a754753665042", 160),
        (8000, 16000, "61c6778c0d9073ae730ddeac49c26a52ee44960781c71c6cab7603aa8843a792", 1762),
        (22050, 8000, "b93973c466f095f24e72717e09d84b94c5933644b57bc0f1eca38edcd483f1d7", 320),
    ],
)
def test_ratecv_recorded(in_rate: int, out_rate: int, digest: str, size: int) -> None:
    out = audio.ratecv(_test_signal(), in_rate, out_rate)
    assert (len(out), _sha(out)) == (size, digest)


def test_ratecv_small_vectors() -> None:
    x = _pcm(0, 1000, -1000, 32767, -32768)
    assert audio.ratecv(x, 3, 4).hex() == "0000ee020000111dff7fffbf"
    assert audio.ratecv(x, 3, 2).hex() == "00000000ff7f"
    assert audio.ratecv(b"", 16000, 8000) == b""


def test_rms_tomono_lin2lin_recorded() -> None:
    assert audio.rms(_test_signal()) == 14174
    assert audio.rms(b"") == 0
    stereo = _pcm(1, 2, -1, -2, 32767, 32767, -32768, -32767)
    assert audio.tomono(stereo).hex() == "0100feffff7f0080"
    assert audio.lin2lin(b"\x80\x7f\x00", 1) == _pcm(-32768, 32512, 0)
    assert audio.lin2lin(b"\x01\x02\x03\xff\xff\xff", 3) == _pcm(0x0302, -1)
    assert audio.lin2lin(b"\x01\x02\x03\x04", 4) == _pcm(0x0403)


def test_encode_is_vectorised() -> None:
    """The RTP pacer encodes a 20 ms frame per tick per call: a table lookup, not a loop."""
    import time

    frame = np.random.default_rng(0).integers(-32768, 32768, 160).astype("<i2").tobytes()
    start = time.perf_counter()
    for _ in range(2000):
        audio.lin2ulaw(frame)
    per_frame = (time.perf_counter() - start) / 2000
    assert per_frame < 200e-6, f"{per_frame * 1e6:.0f} us per frame"


# -- exhaustive comparison with audioop (Python <= 3.12 only) ---------------------------------

HAVE_AUDIOOP = sys.version_info < (3, 13) and importlib.util.find_spec("audioop") is not None
needs_audioop = pytest.mark.skipif(
    not HAVE_AUDIOOP,
    reason="audioop was removed in Python 3.13; the fixed vectors above (recorded from "
    "audioop on 3.11) check the same bytes here",
)


@pytest.fixture()
def audioop():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as module
    return module


@needs_audioop
def test_g711_equals_audioop_on_every_input(audioop) -> None:  # type: ignore[no-untyped-def]
    assert audio.lin2ulaw(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)
    assert audio.lin2alaw(ALL_PCM16) == audioop.lin2alaw(ALL_PCM16, 2)
    assert audio.ulaw2lin(ALL_BYTES) == audioop.ulaw2lin(ALL_BYTES, 2)
    assert audio.alaw2lin(ALL_BYTES) == audioop.alaw2lin(ALL_BYTES, 2)


@needs_audioop
@pytest.mark.parametrize("n", [0, 1, 2, 5, 160, 1001])
def test_pcm_helpers_equal_audioop(audioop, n: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(n)
    for amp in (10, 3000, 32768):
        pcm = rng.integers(-amp, amp, n).astype("<i2").tobytes()
        assert audio.rms(pcm) == audioop.rms(pcm, 2)
        stereo = rng.integers(-amp, amp, 2 * n).astype("<i2").tobytes()
        assert audio.tomono(stereo) == audioop.tomono(stereo, 2, 0.5, 0.5)
        for in_rate, out_rate in RATES:
            expected = audioop.ratecv(pcm, 2, 1, in_rate, out_rate, None)[0]
            assert audio.ratecv(pcm, in_rate, out_rate) == expected, (in_rate, out_rate)
        for width in (1, 3, 4):
            raw = rng.integers(0, 256, n * width, dtype=np.uint8).tobytes()
            assert audio.lin2lin(raw, width) == audioop.lin2lin(raw, width, 2)
        u8 = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        unsigned = audioop.lin2lin(audioop.bias(u8, 1, -128), 1, 2)
        assert audio.decode(u8, "u8").astype("<i2").tobytes() == unsigned
