"""Keys that do not arrive as RFC 2833 events: SIP INFO bodies and tones in the audio.

Some PBXs relay keys as SIP INFO (application/dtmf-relay `Signal=5`, or
application/dtmf `5`), others leave them in the audio (no telephone-event in
the SDP). Both end up where RFC 2833 keys go (CallMedia.on_digit), so the flow
cannot tell them apart.

In-band detection is a Goertzel bank (one DFT bin per DTMF frequency and per
as one matrix product) on blocks of 205 samples (25.6 ms at
8 kHz, bins ~39 Hz wide: the rows are 70-90 Hz apart), every 12.8 ms. A block holds a key
when both tones together carry most of its energy, each is clearly stronger
than the other tones of its group, and the twist between them is within
what phone lines do (speech spreads its energy over many frequencies). No
second-harmonic test: twice a row frequency lies within a bin or two of a
column tone (2 x 697 = 1394 next to 1336). A key
is reported once, after two blocks in a row agree, and again only after a
block without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
KEYS = frozenset("".join(KEYPAD))

BLOCK = 205
HOP = 102  # blocks overlap by half: two agreeing blocks span 38 ms (keys last >= 40 ms)
MIN_RMS = 250.0  # about -36 dBm0: quieter blocks are line noise, not a key
MIN_TONE_SHARE = 0.85  # both tones together (test speech and prompts: at most 0.80)
MAX_NORMAL_TWIST = 10 ** (8 / 10)  # row tone up to 8 dB above the column tone
MAX_REVERSE_TWIST = 10 ** (4 / 10)  # column tone up to 4 dB above the row tone
MIN_PEAK_RATIO = 10 ** (6 / 10)  # the chosen tone 6 dB above the others of its group

_FREQS = np.array(ROWS + COLS)
_PHASE = 2 * np.pi * np.outer(_FREQS, np.arange(BLOCK)) / RATE
_BASIS = np.vstack([np.cos(_PHASE), np.sin(_PHASE)])  # rows: cos per freq, then sin per freq

# SIP INFO: `Signal=` values and application/dtmf bodies; 10/11 are * and # (RFC 4733 codes).
_EVENT_CODES = {**{str(i): str(i) for i in range(10)}, "10": "*", "11": "#"}
_EVENT_CODES.update({str(12 + i): c for i, c in enumerate("ABCD")})


class DtmfInfoError(ValueError):
    """An INFO that claims to carry a key but names none."""


def info_digit(content_type: str, body: bytes) -> str | None:
    """The key an INFO carries; None for an INFO of another kind (not DTMF).

    Raises DtmfInfoError for a DTMF content type whose body names no key.
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind not in ("application/dtmf-relay", "application/dtmf"):
        return None
    text = body.decode("utf-8", "replace").strip()
    if kind == "application/dtmf-relay":
        signal = ""
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip().lower() == "signal":
                signal = value.strip()
                break
    else:
        signal = text
    key = _EVENT_CODES.get(signal) or (signal.upper() if signal.upper() in KEYS else None)
    if key is None:
        raise DtmfInfoError(f"{kind} body names no key: {text[:40]!r}")
    return key


def block_key(block: np.ndarray) -> str | None:
    """The key sounding in one block of BLOCK samples (float), or None."""
    energy = float(np.dot(block, block))
    if energy < MIN_RMS * MIN_RMS * BLOCK:
        return None
    n = len(_FREQS)
    proj = _BASIS @ block
    # The share of the block's energy at each frequency (1.0 for a pure tone on it).
    share = 2 * (proj[:n] ** 2 + proj[n:] ** 2) / (BLOCK * energy)
    rows, cols = share[:4], share[4:]
    r, c = int(np.argmax(rows)), int(np.argmax(cols))
    row, col = float(rows[r]), float(cols[c])
    if row + col < MIN_TONE_SHARE:
        return None
    if row > col * MAX_NORMAL_TWIST or col > row * MAX_REVERSE_TWIST:
        return None
    others_r = np.delete(rows, r)
    others_c = np.delete(cols, c)
    if np.any(others_r * MIN_PEAK_RATIO > row) or np.any(others_c * MIN_PEAK_RATIO > col):
        return None
    return KEYPAD[r][c]


class InbandDtmf:
    """Finds keys in a call's received audio (8 kHz 16-bit PCM) and hands each to `on_digit`."""

    def __init__(self, on_digit: Callable[[str], None]) -> None:
        self.on_digit = on_digit
        self._pending = bytearray()
        self._last: str | None = None  # the previous block's key
        self._reported: str | None = None  # the key held down now, already reported

    def feed(self, pcm16: bytes) -> None:
        self._pending.extend(pcm16)
        size = BLOCK * 2
        while len(self._pending) >= size:
            block = np.frombuffer(bytes(self._pending[:size]), dtype="<i2").astype(np.float64)
            del self._pending[: HOP * 2]
            self._block(block_key(block))

    def _block(self, key: str | None) -> None:
        if key is None:
            self._reported = None
        elif key == self._last and key != self._reported:
            self._reported = key
            log.debug("in-band key %s", key)
            self.on_digit(key)
        self._last = key


def with_inband_keys(
    on_audio: Callable[[bytes], None], on_digit: Callable[[str], None]
) -> Callable[[bytes], None]:
    """An audio callback that also listens for keys in the audio (peers without
    telephone-event). A failing detector is logged once and stops listening, the audio
    still flows."""
    detector: InbandDtmf | None = InbandDtmf(on_digit)

    def receive(pcm16: bytes) -> None:
        nonlocal detector
        if detector is not None:
            try:
                detector.feed(pcm16)
            except Exception:
                log.exception("in-band DTMF detection failed; this call's tones are ignored")
                detector = None
        on_audio(pcm16)

    return receive
