"""Telephone audio in, 16-bit PCM at the model's rate out.

Input encodings: G.711 mu-law and A-law bytes, 8-bit unsigned linear PCM (what
pyVoIP delivers: 160 bytes = 20 ms at 8 kHz, silence 0x80) and 16-bit signed
little-endian PCM, each at any sample rate. Rates are changed by a stateful
polyphase windowed-sinc FIR, so a stream cut into 20 ms packets gives exactly
the samples that converting the whole recording at once gives.

G.711 is decoded and encoded with lookup tables (the ITU-T formulas, identical
to ffmpeg's and to those of the standard library's audio module that Python 3.13
removed). The section "PCM helpers" replaces, byte for byte, the rest of what the
project used from that module: `lin2ulaw`, `lin2alaw`, `ulaw2lin`, `alaw2lin`,
`rms`, `tomono`, `lin2lin` to 16 bits and `ratecv` (tests/test_g711.py compares
them). This module is the project's one G.711 implementation.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, get_args

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

InputFormat = Literal["s16le", "u8", "ulaw", "alaw"]
INPUT_FORMATS: tuple[str, ...] = get_args(InputFormat)
BYTES_PER_SAMPLE: dict[str, int] = {"s16le": 2, "u8": 1, "ulaw": 1, "alaw": 1}

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]


class AudioError(Exception):
    """Audio that cannot be read or decoded, worded for the person who supplied it."""


def _ulaw_table() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_table() -> Int16Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a >> 4) & 0x07
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW = _ulaw_table()
_ALAW = _alaw_table()

# Encoder segment ends (Sun's g711.c, as CPython's removed module used them): a
# magnitude belongs to the first segment whose end is >= it.
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _lin2ulaw_table() -> npt.NDArray[np.uint8]:
    """mu-law byte for every 16-bit sample, indexed by the sample's uint16 bit pattern."""
    v = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + (0x84 >> 2)  # clip, add the bias
    seg = np.searchsorted(_SEG_UEND, mag, side="left")
    uval = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    return (np.where(seg >= 8, 0x7F, uval) ^ mask).astype(np.uint8)


def _lin2alaw_table() -> npt.NDArray[np.uint8]:
    """A-law byte for every 16-bit sample, indexed by the sample's uint16 bit pattern."""
    v = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32) >> 3
    mask = np.where(v >= 0, 0xD5, 0x55)
    mag = np.where(v >= 0, v, -v - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    quant = np.where(seg < 2, mag >> 1, mag >> np.minimum(seg, 15)) & 0x0F
    aval = (seg << 4) | quant
    return (np.where(seg >= 8, 0x7F, aval) ^ mask).astype(np.uint8)


_LIN2ULAW = _lin2ulaw_table()
_LIN2ALAW = _lin2alaw_table()


def check_format(input_format: str, rate: int) -> None:
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"unknown audio format {input_format!r}; use one of {INPUT_FORMATS}")
    if not isinstance(rate, int) or not 1000 <= rate <= 384_000:
        raise ValueError(f"sample rate must be an integer in Hz, got {rate!r}")


def decode(data: bytes, input_format: str) -> Int16Array:
    """Bytes of one encoding -> 16-bit samples (s16le input must have an even length)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if input_format == "ulaw":
        return _ULAW[raw]
    if input_format == "alaw":
        return _ALAW[raw]
    if input_format == "u8":
        return ((raw.astype(np.int16) - 128) << 8).astype(np.int16)
    if input_format == "s16le":
        if len(data) % 2:
            raise ValueError("16-bit PCM needs an even number of bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    raise ValueError(f"unknown audio format {input_format!r}; use one of {INPUT_FORMATS}")


def encode(samples: npt.ArrayLike, output_format: Literal["ulaw", "alaw"]) -> bytes:
    """16-bit samples -> G.711 bytes (one table lookup per sample, no Python loop)."""
    index = np.asarray(samples, dtype=np.int16).view(np.uint16)
    if output_format == "ulaw":
        return _LIN2ULAW[index].tobytes()
    if output_format == "alaw":
        return _LIN2ALAW[index].tobytes()
    raise ValueError(f"unknown G.711 encoding {output_format!r}; use 'ulaw' or 'alaw'")


def to_int16(samples: FloatArray) -> Int16Array:
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


class Resampler:
    """Stateful rational-ratio resampler (polyphase FIR, Kaiser-windowed sinc).

    The filter is linear phase and its delay is compensated, so the output of
    `n` input samples is `ceil(n * out_rate / in_rate)` samples aligned with the
    input. Output only depends on the samples, never on how they were chunked.
    Passband is flat to 92.5 % of the lower Nyquist frequency (3.7 kHz for
    8 kHz audio); images and aliases are attenuated by about 80 dB.
    """

    ZERO_CROSSINGS = 32  # half length of the prototype, in zero crossings of the sinc
    CUTOFF = 0.925  # -6 dB point, as a fraction of the lower Nyquist frequency
    KAISER_BETA = 8.0
    _MAX_ROWS = 8192  # outputs computed per vectorised step (bounds memory)

    def __init__(self, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = math.gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self.up, self.down = out_rate // g, in_rate // g
        self.passthrough = self.up == self.down
        self._n_in = 0  # input samples received
        self._n_out = 0  # output samples produced
        self._finished = False
        if self.passthrough:
            return
        span = max(self.up, self.down)
        self.half_len = self.ZERO_CROSSINGS * span
        taps = 2 * self.half_len + 1
        fc = self.CUTOFF / span
        n = np.arange(taps) - self.half_len
        h = fc * np.sinc(fc * n) * np.kaiser(taps, self.KAISER_BETA)
        h *= self.up / h.sum()
        self.phase_len = -(-taps // self.up)
        padded = np.zeros(self.phase_len * self.up)
        padded[:taps] = h
        # Row p holds taps p, p+up, p+2up, ... reversed: the filter for output phase p,
        # ready to be applied as a dot product with phase_len consecutive inputs.
        self._phases = padded.reshape(self.phase_len, self.up).T[:, ::-1].copy()
        # Input history; _buf[0] is input sample number _buf_start (negative = zeros before t=0).
        self._buf = np.zeros(self.phase_len - 1)
        self._buf_start = -(self.phase_len - 1)

    def process(self, samples: npt.ArrayLike, final: bool = False) -> FloatArray:
        """Feed input samples; return the output samples that are now complete.

        With final=True the tail still held back by the filter is flushed; the
        resampler accepts no more input afterwards.
        """
        if self._finished:
            raise RuntimeError("resampler already flushed")
        x = np.asarray(samples, dtype=np.float64).ravel()
        self._n_in += len(x)
        if self.passthrough:
            self._finished = final
            self._n_out += len(x)
            return x.copy()
        outputs = []
        if len(x):
            self._buf = np.concatenate([self._buf, x])
        if final:
            self._finished = True
            total = -(-self._n_in * self.up // self.down)
            # Zeros after the end let the filter produce the delayed last outputs.
            self._buf = np.concatenate([self._buf, np.zeros(self.half_len // self.up + 2)])
            last_out = total
        else:
            last_in = self._buf_start + len(self._buf) - 1
            # Largest n whose newest needed input index (n*down + half_len)//up is available.
            last_out = (last_in * self.up + self.up - 1 - self.half_len) // self.down + 1
        while self._n_out < last_out:
            stop = min(last_out, self._n_out + self._MAX_ROWS)
            outputs.append(self._compute(self._n_out, stop))
            self._n_out = stop
        self._trim()
        return np.concatenate(outputs) if outputs else np.zeros(0)

    def _compute(self, start: int, stop: int) -> FloatArray:
        t = np.arange(start, stop, dtype=np.int64) * self.down + self.half_len
        oldest = t // self.up - self._buf_start - self.phase_len + 1
        phase = t % self.up
        windows = sliding_window_view(self._buf, self.phase_len)
        out = np.empty(stop - start)
        for p in np.unique(phase):
            sel = phase == p
            out[sel] = windows[oldest[sel]] @ self._phases[p]
        return out

    def _trim(self) -> None:
        oldest_needed = (self._n_out * self.down + self.half_len) // self.up - self.phase_len + 1
        drop = oldest_needed - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop


def resample(samples: npt.ArrayLike, in_rate: int, out_rate: int) -> Int16Array:
    """One-shot resampling of 16-bit samples (same filter as the streaming path)."""
    return to_int16(Resampler(in_rate, out_rate).process(samples, final=True))


class PcmConverter:
    """Stream of bytes in one encoding/rate -> 16-bit little-endian PCM at `output_rate`."""

    def __init__(self, input_format: str, input_rate: int, output_rate: int) -> None:
        check_format(input_format, input_rate)
        self.input_format = input_format
        self.input_rate = input_rate
        self.output_rate = output_rate
        self._resampler = Resampler(input_rate, output_rate)
        self._carry = b""  # an odd byte of 16-bit input waiting for its partner
        self.input_samples = 0

    def convert(self, chunk: bytes, final: bool = False) -> bytes:
        data = self._carry + chunk
        width = BYTES_PER_SAMPLE[self.input_format]
        usable = len(data) - len(data) % width
        self._carry = data[usable:]
        if final and self._carry:
            self._carry = b""  # a dangling half sample cannot be decoded; drop it
        samples = decode(data[:usable], self.input_format)
        self.input_samples += len(samples)
        if self._resampler.passthrough:
            return samples.astype("<i2").tobytes()
        return to_int16(self._resampler.process(samples, final=final)).astype("<i2").tobytes()

    def flush(self) -> bytes:
        return self.convert(b"", final=True)


def convert(data: bytes, input_format: str, input_rate: int, output_rate: int) -> bytes:
    """One-shot conversion of a whole buffer to 16-bit PCM at `output_rate`."""
    return PcmConverter(input_format, input_rate, output_rate).convert(data, final=True)


# -- PCM helpers (what the project used from the removed module, same bytes) -


def _s16(pcm16: bytes) -> Int16Array:
    if len(pcm16) % 2:
        raise ValueError("16-bit PCM needs an even number of bytes")
    return np.frombuffer(pcm16, dtype="<i2")


def lin2ulaw(pcm16: bytes) -> bytes:
    """16-bit little-endian PCM -> mu-law bytes (stdlib lin2ulaw(pcm16, 2))."""
    return encode(_s16(pcm16), "ulaw")


def lin2alaw(pcm16: bytes) -> bytes:
    """16-bit little-endian PCM -> A-law bytes (stdlib lin2alaw(pcm16, 2))."""
    return encode(_s16(pcm16), "alaw")


def ulaw2lin(data: bytes) -> bytes:
    """mu-law bytes -> 16-bit little-endian PCM (stdlib ulaw2lin(data, 2))."""
    return decode(data, "ulaw").astype("<i2").tobytes()


def alaw2lin(data: bytes) -> bytes:
    """A-law bytes -> 16-bit little-endian PCM (stdlib alaw2lin(data, 2))."""
    return decode(data, "alaw").astype("<i2").tobytes()


def rms(pcm16: bytes) -> int:
    """Root mean square of 16-bit samples, truncated (stdlib rms(pcm16, 2)); 0 if empty."""
    x = _s16(pcm16).astype(np.int64)
    if not len(x):
        return 0
    return int(math.sqrt(float(np.dot(x, x)) / len(x)))


def lin2lin(data: bytes, width: int) -> bytes:
    """Signed little-endian PCM of 1, 2, 3 or 4 bytes -> 16-bit (stdlib lin2lin(d, w, 2)).

    Wider samples keep their top 16 bits; 8-bit samples here are SIGNED, as in the
    stdlib (8-bit WAV is unsigned: decode(data, "u8") is bias(..., -128) then this).
    """
    if width == 2:
        return bytes(data[: len(data) - len(data) % 2])
    if width == 1:
        return (np.frombuffer(data, dtype=np.int8).astype("<i2") << 8).tobytes()
    if width in (3, 4):
        raw = np.frombuffer(data[: len(data) - len(data) % width], dtype=np.uint8)
        top = raw.reshape(-1, width)[:, width - 2 :]  # the two most significant bytes
        return np.ascontiguousarray(top).tobytes()
    raise ValueError(f"sample width must be 1, 2, 3 or 4 bytes, got {width}")


def tomono(pcm16: bytes) -> bytes:
    """Interleaved stereo 16-bit PCM -> mono, floor of the mean (stdlib tomono(d, 2, .5, .5))."""
    frames = _s16(pcm16[: len(pcm16) - len(pcm16) % 4]).astype(np.int32).reshape(-1, 2)
    return ((frames[:, 0] + frames[:, 1]) >> 1).astype("<i2").tobytes()


def ratecv(pcm16: bytes, in_rate: int, out_rate: int) -> bytes:
    """Mono 16-bit PCM from `in_rate` to `out_rate` Hz by linear interpolation.

    Byte for byte what the stdlib's `ratecv(pcm16, 2, 1, in_rate, out_rate, None)[0]` gave (no
    state carried between calls, no low-pass filter): output k lies between inputs i-1 and
    i with i = ceil(k * in/out), weighted by d = i*out - k*in, in its arithmetic
    (samples scaled to 32 bits, C double, truncation toward zero, then an arithmetic shift).
    For transcription use `Resampler`, which filters.
    """
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError("sample rates must be positive")
    x = _s16(pcm16).astype(np.int64) << 16
    g = math.gcd(in_rate, out_rate)
    inr, outr = in_rate // g, out_rate // g
    if not len(x):
        return b""
    k = np.arange((len(x) - 1) * outr // inr + 1, dtype=np.int64)
    i = -(-k * inr // outr)
    d = i * outr - k * inr
    cur = x[i]
    prev = np.where(i > 0, x[np.maximum(i - 1, 0)], 0)
    value = np.trunc(
        (prev.astype(np.float64) * d + cur.astype(np.float64) * (outr - d)) / float(outr)
    )
    return (value.astype(np.int64) >> 16).astype("<i2").tobytes()


# -- WAV ---------------------------------------------------------------------

_WAVE_FORMATS = {1: "pcm", 3: "float", 6: "alaw", 7: "ulaw", 0xFFFE: "extensible"}
_UNKNOWN_SIZE = 0xFFFFFFFF


@dataclass(frozen=True)
class WavInfo:
    input_format: InputFormat
    sample_rate: int
    channels: int
    data_bytes: int | None  # None: unknown (streamed WAV), read to end of file

    @property
    def frame_bytes(self) -> int:
        return BYTES_PER_SAMPLE[self.input_format] * self.channels


@dataclass(frozen=True)
class WavAudio:
    """Mono audio in one of the input encodings (multi-channel files are mixed to s16le)."""

    data: bytes
    input_format: InputFormat
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.data) / BYTES_PER_SAMPLE[self.input_format] / self.sample_rate


def _read_exact(stream: BinaryIO, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise AudioError(f"not a WAV file: ends inside the {what}")
    return data


def read_wav_header(stream: BinaryIO) -> WavInfo:
    """Parse a RIFF/WAVE header and leave `stream` at the first audio byte.

    Works on pipes: a data size of 0 or 0xFFFFFFFF (what ffmpeg writes when it
    cannot seek back) means "until end of stream".
    """
    riff = stream.read(12)
    if len(riff) < 12 or riff[:4] not in (b"RIFF", b"RF64") or riff[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        head = stream.read(8)
        if len(head) < 8:
            raise AudioError("not a WAV file: no data chunk")
        cid, size = head[:4], struct.unpack("<I", head[4:])[0]
        if cid == b"fmt ":
            body = _read_exact(stream, size + (size & 1), "format chunk")
            if size < 16:
                raise AudioError("not a WAV file: format chunk too short")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and size >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise AudioError("not a WAV file: data before the format chunk")
            return _wav_info(fmt, None if size in (0, _UNKNOWN_SIZE) else size)
        else:
            skip = size + (size & 1)
            if skip and len(stream.read(skip)) < skip:
                raise AudioError("not a WAV file: no data chunk")


def _wav_info(fmt: tuple[int, int, int, int], data_bytes: int | None) -> WavInfo:
    tag, channels, rate, bits = fmt
    encodings: dict[tuple[int, int], InputFormat] = {
        (1, 16): "s16le",
        (1, 8): "u8",
        (7, 8): "ulaw",
        (6, 8): "alaw",
    }
    enc = encodings.get((tag, bits))
    if enc is None:
        name = _WAVE_FORMATS.get(tag, f"format tag {tag}")
        raise AudioError(
            f"unsupported WAV encoding ({name}, {bits} bit); supported: 16-bit or 8-bit PCM, "
            "G.711 mu-law or A-law (other files are read through ffmpeg)"
        )
    if channels < 1 or rate < 1000:
        raise AudioError(f"WAV header is damaged ({channels} channels, {rate} Hz)")
    return WavInfo(enc, rate, channels, data_bytes)


def iter_wav_data(stream: BinaryIO, info: WavInfo, chunk_bytes: int) -> Iterator[bytes]:
    """Yield the audio bytes after the header in chunks of whole frames."""
    chunk_bytes = max(info.frame_bytes, chunk_bytes - chunk_bytes % info.frame_bytes)
    remaining = info.data_bytes
    carry = b""
    while remaining is None or remaining > 0:
        want = chunk_bytes if remaining is None else min(chunk_bytes, remaining)
        data = stream.read(want)
        if not data:
            break
        if remaining is not None:
            remaining -= len(data)
        data = carry + data
        usable = len(data) - len(data) % info.frame_bytes
        carry = data[usable:]
        if usable:
            yield data[:usable]


def downmix(data: bytes, info: WavInfo) -> bytes:
    """Interleaved multi-channel frames -> mono 16-bit PCM (mean of the channels)."""
    samples = decode(data, info.input_format).reshape(-1, info.channels)
    return to_int16(samples.mean(axis=1)).astype("<i2").tobytes()


def read_wav(path: str | Path) -> WavAudio:
    """Read a WAV file (16/8-bit PCM, mu-law, A-law); several channels are mixed to mono."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            try:
                info = read_wav_header(f)
            except AudioError as exc:
                raise AudioError(f"{p}: {exc}") from None
            data = b"".join(iter_wav_data(f, info, 1 << 20))
    except OSError as exc:
        raise AudioError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if info.channels == 1:
        return WavAudio(data, info.input_format, info.sample_rate)
    return WavAudio(downmix(data, info), "s16le", info.sample_rate)
