"""Caller media as pcap files of PCMU RTP that SIPp's `<exec play_pcap_audio=...>` replays.

SIPp 3.6.1 reads the pcap with libpcap (link type Ethernet or Linux SLL, IPv4/IPv6,
UDP; captured length must equal wire length, packets <= 1500 bytes). When playing
it copies each UDP payload VERBATIM (RTP payload type, SSRC, sequence numbers and
timestamps are not rewritten), replaces the addresses and ports with its media
address (-mi/-mp) and the peer's SDP address, and paces packets by the pcap
timestamps. It needs a raw socket (root or CAP_NET_RAW). A new play in the same
call cancels the one still running, and two files play as two RTP streams
(their own SSRC/seq/timestamps) from the same source port. So the scenarios
play ONE file, built here by `RtpStream`: silence, audio and RFC 4733 DTMF
events in sequence with one SSRC and continuous sequence numbers/timestamps.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.asr import audio as g711  # G.711 and PCM helpers (what audioop did, same bytes)
from ivr.transports.sip.dtmf import COLS, KEYPAD, ROWS

PCMU = 0
TELEPHONE_EVENT = 101
SAMPLE_RATE = 8000
PTIME_MS = 20
SAMPLES_PER_PACKET = SAMPLE_RATE * PTIME_MS // 1000  # 160
ULAW_SILENCE = 0xFF
SHIPPED_PCAP_DIR = Path("/usr/share/sip-tester")

_DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
for _i, _c in enumerate("ABCD"):
    _DTMF_EVENTS[_c] = 12 + _i
_SHIPPED_NAMES = {**{str(d): str(d) for d in range(10)}, "*": "star", "#": "pound"}

_PCAP_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # DLT_EN10MB
_ETH = bytes.fromhex("00005e00530100005e005302") + b"\x08\x00"


class AudioFormatError(ValueError):
    """The WAV file is not something this module converts."""


# -- WAV input -------------------------------------------------------------------------------


def _wav_chunks(data: bytes) -> tuple[tuple[int, int, int, int], bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunk = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunk[:16])
            if tag == 0xFFFE and size >= 26:
                tag = struct.unpack("<H", chunk[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            body = chunk
            break
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise AudioFormatError("WAV file without fmt or data chunk")
    return fmt, body


def wav_to_ulaw(path: Path) -> bytes:
    """Read a WAV (mu-law, A-law, 8/16-bit PCM; any rate, mono or stereo) as 8 kHz mu-law."""
    (tag, channels, rate, bits), body = _wav_chunks(Path(path).read_bytes())
    if tag == 7 and bits == 8:  # mu-law
        pcm = g711.ulaw2lin(body)
    elif tag == 6 and bits == 8:  # A-law
        pcm = g711.alaw2lin(body)
    elif tag == 1 and bits == 16:
        pcm = body[: len(body) // 2 * 2]
    elif tag == 1 and bits == 8:
        pcm = g711.decode(body, "u8").astype("<i2").tobytes()
    else:
        raise AudioFormatError(f"{path}: unsupported WAV format tag {tag}, {bits} bits")
    if channels == 2:
        pcm = g711.tomono(pcm)
    elif channels != 1:
        raise AudioFormatError(f"{path}: {channels} channels")
    if tag == 7 and channels == 1 and rate == SAMPLE_RATE:
        return body
    if rate != SAMPLE_RATE:
        pcm = g711.ratecv(pcm, rate, SAMPLE_RATE)
    return g711.lin2ulaw(pcm)


def write_pcm16_wav(path: Path, pcm: bytes, rate: int = SAMPLE_RATE) -> Path:
    """Write mono 16-bit PCM as a WAV file (what baresip's aufile source reads)."""
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def wav_to_pcm16_wav(src: Path, dst: Path, rate: int = SAMPLE_RATE) -> Path:
    """Convert any WAV `wav_to_ulaw` reads to mono 16-bit PCM at `rate` Hz."""
    pcm = g711.ulaw2lin(wav_to_ulaw(src))
    if rate != SAMPLE_RATE:
        pcm = g711.ratecv(pcm, SAMPLE_RATE, rate)
    return write_pcm16_wav(dst, pcm, rate)


# -- RTP packets and pcap files --------------------------------------------------------------


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet and the time (s, from the first packet) it is sent."""

    time: float
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes

    def encode(self) -> bytes:
        return (
            struct.pack(
                "!BBHII",
                0x80,
                (0x80 if self.marker else 0) | self.payload_type,
                self.seq & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc,
            )
            + self.payload
        )

    @property
    def dtmf_event(self) -> tuple[str, bool, int] | None:
        """(digit, end flag, duration) for a telephone-event packet, else None."""
        if self.payload_type != TELEPHONE_EVENT or len(self.payload) < 4:
            return None
        event, flags, duration = struct.unpack("!BBH", self.payload[:4])
        names = {v: k for k, v in _DTMF_EVENTS.items()}
        return names.get(event, f"event{event}"), bool(flags & 0x80), duration


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack("!10H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _frame(rtp: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp
    ip_wo = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        ident & 0xFFFF,
        0,
        64,
        17,
        0,
        bytes(int(x) for x in src[0].split(".")),
        bytes(int(x) for x in dst[0].split(".")),
    )
    ip = ip_wo[:10] + struct.pack("!H", _ip_checksum(ip_wo)) + ip_wo[12:]
    return _ETH + ip + udp


def write_rtp_pcap(
    path: Path,
    packets: Iterable[RtpPacket],
    *,
    src: tuple[str, int] = ("127.0.0.1", 16000),
    dst: tuple[str, int] = ("127.0.0.1", 6000),
    start: float = 1_700_000_000.0,
) -> Path:
    """Write RTP packets as an Ethernet/IPv4/UDP pcap (SIPp replaces addresses and ports)."""
    out = bytearray(_PCAP_GLOBAL)
    for i, pkt in enumerate(packets):
        frame = _frame(pkt.encode(), src, dst, i)
        t = start + pkt.time
        sec = int(t)
        usec = round((t - sec) * 1_000_000)
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    Path(path).write_bytes(bytes(out))
    return Path(path)


def read_rtp_pcap(path: Path, *, dst_port: int | None = None) -> list[RtpPacket]:
    """Parse the RTP packets of a pcap (Ethernet or Linux SLL, IPv4, UDP); times from 0.

    `dst_port` keeps only the packets sent to that UDP port (for captures).
    """
    data = Path(path).read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 113: 16}.get(linktype)
    if link_len is None:
        raise ValueError(f"{path}: unsupported link type {linktype}")
    pos, packets, first = 24, [], None
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        t = sec + frac / (1e9 if nano else 1e6)
        ip = frame[link_len:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4 :]
        if dst_port is not None and struct.unpack("!H", udp[2:4])[0] != dst_port:
            continue
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", rtp[:12])
        hdr = 12 + 4 * (b0 & 0x0F)
        if first is None:
            first = t
        packets.append(RtpPacket(t - first, b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), rtp[hdr:]))
    return packets


# -- Building a stream -----------------------------------------------------------------------


@dataclass
class RtpStream:
    """One RTP stream (one SSRC) built item by item; `write()` makes the pcap.

    `silence(ms)` sends mu-law silence packets, `gap(ms)` sends nothing (like
    silence suppression), `audio(ulaw)` sends 20 ms packets, `dtmf(digits)`
    sends RFC 4733 events (marker on the first packet, all packets of an event
    share its start timestamp, the end packet is sent three times).
    """

    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = field(default_factory=lambda: random.randrange(1, 30000))
    timestamp: int = field(default_factory=lambda: random.getrandbits(31))
    dtmf_payload_type: int = TELEPHONE_EVENT
    packets: list[RtpPacket] = field(default_factory=list, init=False)
    clock_ms: int = field(default=0, init=False)  # when the next packet leaves
    _talkspurt: bool = field(default=True, init=False, repr=False)

    def _emit(
        self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None
    ) -> None:
        self.packets.append(
            RtpPacket(
                self.clock_ms / 1000,
                pt,
                self.seq & 0xFFFF,
                (self.timestamp if ts is None else ts) & 0xFFFFFFFF,
                self.ssrc,
                marker,
                payload,
            )
        )
        self.seq += 1

    def audio(self, ulaw: bytes) -> RtpStream:
        """Append mu-law audio (padded with silence to whole 20 ms packets)."""
        rest = len(ulaw) % SAMPLES_PER_PACKET
        if rest:
            ulaw += bytes([ULAW_SILENCE]) * (SAMPLES_PER_PACKET - rest)
        for off in range(0, len(ulaw), SAMPLES_PER_PACKET):
            self._emit(PCMU, ulaw[off : off + SAMPLES_PER_PACKET], marker=self._talkspurt)
            self._talkspurt = False
            self.timestamp += SAMPLES_PER_PACKET
            self.clock_ms += PTIME_MS
        return self

    def silence(self, ms: int) -> RtpStream:
        """Append `ms` (rounded up to 20 ms) of mu-law silence packets."""
        count = -(-ms // PTIME_MS)
        return self.audio(bytes([ULAW_SILENCE]) * (count * SAMPLES_PER_PACKET))

    def gap(self, ms: int) -> RtpStream:
        """Send nothing for `ms`; the timestamp advances as if audio had been sent."""
        count = -(-ms // PTIME_MS)
        self.timestamp += count * SAMPLES_PER_PACKET
        self.clock_ms += count * PTIME_MS
        self._talkspurt = True
        return self

    def wav(self, path: Path) -> RtpStream:
        """Append a WAV file's audio (converted to 8 kHz mu-law)."""
        return self.audio(wav_to_ulaw(path))

    def dtmf(
        self, digits: str, *, duration_ms: int = 160, gap_ms: int = 100, volume: int = 10
    ) -> RtpStream:
        """Append RFC 4733 events for `digits` (0-9 * # A-D), `gap_ms` of silence after each."""
        for digit in digits:
            event = _DTMF_EVENTS.get(digit.upper())
            if event is None:
                raise ValueError(f"not a DTMF digit: {digit!r}")
            start_ts = self.timestamp
            steps = max(1, duration_ms // PTIME_MS)
            for i in range(1, steps + 1):
                end = i == steps
                dur = i * SAMPLES_PER_PACKET
                payload = struct.pack("!BBH", event, (0x80 if end else 0) | volume, dur)
                if end:  # the end packet three times back to back, one seq (as SIPp's pcaps do)
                    for _ in range(3):
                        self.packets.append(
                            RtpPacket(
                                self.clock_ms / 1000,
                                self.dtmf_payload_type,
                                self.seq & 0xFFFF,
                                start_ts,
                                self.ssrc,
                                False,
                                payload,
                            )
                        )
                    self.seq += 1
                else:
                    self._emit(self.dtmf_payload_type, payload, marker=i == 1, ts=start_ts)
                self.clock_ms += PTIME_MS
            self.timestamp = start_ts + steps * SAMPLES_PER_PACKET
            self._talkspurt = True
            if gap_ms:
                self.silence(gap_ms)
        return self

    def tones(
        self,
        digits: str,
        *,
        duration_ms: int = 120,
        gap_ms: int = 100,
        level: float = 0.2,
        twist_db: float = 0.0,
    ) -> RtpStream:
        """Append in-band DTMF: each key's two tones in the audio (for peers without
        telephone-event), the row tone at `level` of full scale, the column tone
        `twist_db` below it, `gap_ms` of silence after each."""
        n = SAMPLE_RATE * duration_ms // 1000
        amp = 32767 * level
        col_amp = amp * 10 ** (-twist_db / 20)
        for digit in digits:
            row = next((r for r, keys in enumerate(KEYPAD) if digit.upper() in keys), None)
            if row is None:
                raise ValueError(f"not a DTMF digit: {digit!r}")
            col = KEYPAD[row].index(digit.upper())
            pcm = b"".join(
                struct.pack(
                    "<h",
                    round(
                        amp * math.sin(2 * math.pi * ROWS[row] * i / SAMPLE_RATE)
                        + col_amp * math.sin(2 * math.pi * COLS[col] * i / SAMPLE_RATE)
                    ),
                )
                for i in range(n)
            )
            self.audio(g711.lin2ulaw(pcm))
            if gap_ms:
                self.silence(gap_ms)
        return self

    def splice(self, path: Path) -> RtpStream:
        """Append the RTP packets of a pcap (e.g. `shipped_dtmf_pcap("1")`) onto this stream.

        Payloads, payload types, markers and relative timing are kept; SSRC,
        sequence numbers and timestamps are re-stamped to continue this stream.
        """
        pkts = read_rtp_pcap(path)
        if not pkts:
            return self
        first = pkts[0]
        seq0, ts0, clock0 = self.seq, self.timestamp, self.clock_ms
        last_dseq = 0
        for p in pkts:
            dseq = (p.seq - first.seq) & 0xFFFF
            last_dseq = max(last_dseq, dseq)
            self.packets.append(
                RtpPacket(
                    (clock0 + round((p.time - first.time) * 1000)) / 1000,
                    p.payload_type,
                    (seq0 + dseq) & 0xFFFF,
                    (ts0 + p.timestamp - first.timestamp) & 0xFFFFFFFF,
                    self.ssrc,
                    p.marker,
                    p.payload,
                )
            )
        span = round((pkts[-1].time - first.time) * 1000) + PTIME_MS
        span = -(-span // PTIME_MS) * PTIME_MS
        self.seq = seq0 + last_dseq + 1
        self.clock_ms += span
        self.timestamp = ts0 + span * SAMPLE_RATE // 1000
        self._talkspurt = True
        return self

    @property
    def duration(self) -> float:
        """Seconds from the first packet to the end of the last one."""
        return self.clock_ms / 1000

    def write(self, path: Path) -> PcapInfo:
        write_rtp_pcap(path, self.packets)
        return PcapInfo(Path(path), len(self.packets), self.duration)


@dataclass(frozen=True)
class PcapInfo:
    """A written pcap: where, how many packets, and how long it plays (s)."""

    path: Path
    packets: int
    duration: float


def wav_to_rtp_pcap(
    wav: Path,
    out: Path,
    *,
    lead_silence_ms: int = 0,
    trailing_silence_ms: int = 0,
) -> PcapInfo:
    """PCMU RTP pcap (PT 0, 160 bytes/20 ms) of a WAV file, with optional silence around it."""
    stream = RtpStream()
    if lead_silence_ms:
        stream.silence(lead_silence_ms)
    stream.wav(wav)
    if trailing_silence_ms:
        stream.silence(trailing_silence_ms)
    return stream.write(out)


def dtmf_pcap(
    digits: str,
    out: Path,
    *,
    lead_silence_ms: int = 0,
    duration_ms: int = 160,
    gap_ms: int = 100,
) -> PcapInfo:
    """RFC 4733 pcap of `digits` (payload type 101), optionally after some silence."""
    stream = RtpStream()
    if lead_silence_ms:
        stream.silence(lead_silence_ms)
    stream.dtmf(digits, duration_ms=duration_ms, gap_ms=gap_ms)
    return stream.write(out)


def caller_media_pcap(
    out: Path,
    *,
    digits_first: str = "",
    statement: Path | None = None,
    digits_last: str = "#",
    lead_ms: int = 1000,
    between_ms: int = 300,
    trailing_silence_ms: int = 500,
    shipped_dtmf: bool = False,
) -> PcapInfo:
    """The usual caller: silence, DTMF menu choice, spoken statement, '#', trailing silence.

    One RTP stream (one SSRC). `shipped_dtmf` splices SIPp's own dtmf_2833_N.pcap
    packets for the digits instead of generating RFC 4733 events.
    """
    stream = RtpStream().silence(lead_ms)

    def digits(ds: str) -> None:
        for i, d in enumerate(ds):
            if shipped_dtmf:
                stream.splice(shipped_dtmf_pcap(d))
                if i < len(ds) - 1:
                    stream.silence(100)
            else:
                stream.dtmf(d, gap_ms=100 if i < len(ds) - 1 else 0)

    if digits_first:
        digits(digits_first)
        stream.silence(between_ms)
    if statement is not None:
        stream.wav(statement).silence(between_ms)
    if digits_last:
        digits(digits_last)
    if trailing_silence_ms:
        stream.silence(trailing_silence_ms)
    return stream.write(out)


def shipped_dtmf_pcap(digit: str) -> Path:
    """SIPp's own RFC 2833 pcap for one digit (PT 101, SSRC 0x0e05384e; 10 packets, 140 ms)."""
    name = _SHIPPED_NAMES.get(digit)
    if name is None:
        raise ValueError(f"SIPp ships no pcap for {digit!r}")
    path = SHIPPED_PCAP_DIR / f"dtmf_2833_{name}.pcap"
    if not path.exists():
        raise FileNotFoundError(f"{path} (Debian package sip-tester)")
    return path
