"""RTP media for one call, on pyVoIP's payload types.

What differs from pyVoIP 1.6.8's RTPClient, and why:
- audio is kept as 16-bit PCM end to end (pyVoIP's 8-bit path costs ~12 dB SNR);
- each codec has its own encoder (pyVoIP sent mu-law bytes as PCMA, defect 3);
- gaps in received audio are filled with true silence (pyVoIP wrote 0x00, a full
  negative 8-bit sample, during DTMF events, defect 4);
- one pacer thread sends every call's packets on absolute 20 ms deadlines (pyVoIP
  slept per call thread and drifted: 127 ms gaps with 10 calls, defect 8), and it
  sends them without letting go of the GIL (see `_gil_holding_sendto`);
- one receiver thread waits on every call's socket at once (a selector) instead of
  a thread per call polling every 10 ms; RTP headers are parsed with struct
  (pyVoIP's parser went through strings of bits, and kept padding and header
  extensions as audio).

Measured with bench/sip_load.py (bench/results/sip-load.md): with a thread per
call and socket.sendto, 30 SIPp calls gave a p99 send gap of 35-55 ms (max ~100 ms)
while the IVR used under 30 % of a core: the GIL, not the CPU, delayed the pacer.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import random
import selectors
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from pyVoIP import RTP

from ivr.asr import audio as g711
from ivr.transports.sip.sdp import PCMA, PCMU

log = logging.getLogger(__name__)

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = FRAME_SAMPLES * 2  # 16-bit PCM
SILENCE = b"\x00" * FRAME_BYTES
EVENTS = "0123456789*#ABCD"


def _gil_holding_sendto() -> Callable[..., int] | None:
    """libc sendto(2) called WITHOUT releasing the GIL (Linux), or None.

    socket.sendto releases the GIL around the system call. For the pacer, which sends
    one packet per call every 20 ms, that is the problem: while it is in the kernel a
    busy thread (a flow writing its draft, a receiver) takes the GIL, and the pacer
    waits up to the 5 ms switch interval to get it back, after EVERY packet. With 30
    calls a tick then took up to 75 ms (p99 gap 35-55 ms). A non-blocking UDP send
    on a bound socket takes microseconds, so holding the GIL through it costs the
    other threads nothing and the whole tick goes out in one go. ctypes.PyDLL
    functions keep the GIL; MSG_DONTWAIT makes sure the call never blocks.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.PyDLL(None, use_errno=True).sendto
    except (OSError, AttributeError):
        return None
    fn.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint32,
    ]
    fn.restype = ctypes.c_ssize_t
    return fn


_SENDTO = _gil_holding_sendto()
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0x40)


def _sockaddr_in(addr: tuple[str, int]) -> bytes | None:
    """struct sockaddr_in for an IPv4 address (None for anything else)."""
    try:
        packed = socket.inet_aton(addr[0])
    except OSError:
        return None
    if addr[0].count(".") != 3:
        return None  # inet_aton also takes "1" or "1.2": leave odd forms to the kernel
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", addr[1]) + packed + b"\0" * 8


class RtpPacer:
    """Sends one packet per stream every 20 ms, on deadlines that do not drift."""

    interval = 0.020

    def __init__(self) -> None:
        self._streams: set[RtpStream] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, stream: RtpStream) -> None:
        with self._lock:
            self._streams.add(stream)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="rtp-pacer", daemon=True)
                self._thread.start()

    def remove(self, stream: RtpStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                streams = list(self._streams)
            for s in streams:
                try:
                    s.send_tick()
                except Exception as exc:  # one call's failure must not silence the others
                    self.remove(s)
                    s.fail("send", exc)
            deadline += self.interval
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.2:  # stalled (machine suspended): resynchronise, don't burst
                deadline = time.monotonic()

    def stop(self) -> None:
        self._stop.set()


PACER = RtpPacer()


class RtpReceiver:
    """One thread receives every stream's packets, waiting on all their sockets at once.

    A thread per call meant 50 wake-ups a second per call, each taking the GIL from
    whoever had it (the pacer included); one thread reading whatever is ready
    handles several packets per wake-up. The thread ("rtp-rx") starts with the
    first stream and ends once no stream is left. Stream callbacks (on_audio,
    on_digit) run on it, so they must be quick (queue work elsewhere).
    """

    poll_s = 0.25  # how soon the thread notices it has nothing left to do
    batch = 16  # packets read from one socket before the next socket's turn

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # held while a batch of packets is handled
        self._sel: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None

    def add(self, stream: RtpStream) -> None:
        with self._lock:
            if self._sel is None:
                self._sel = selectors.DefaultSelector()
                self._thread = threading.Thread(
                    target=self._run, args=(self._sel,), name="rtp-rx", daemon=True
                )
                self._thread.start()
            self._sel.register(stream.sock, selectors.EVENT_READ, stream)

    def remove(self, stream: RtpStream) -> None:
        """Stop receiving for `stream`; once this returns, its callbacks are not running."""
        with self._lock:
            if self._sel is None:
                return
            try:
                self._sel.unregister(stream.sock)
            except (KeyError, ValueError):
                return
        if threading.current_thread() is not self._thread and self._busy.acquire(timeout=1):
            self._busy.release()

    def _run(self, sel: selectors.BaseSelector) -> None:
        while True:
            with self._lock:
                if not sel.get_map():
                    self._sel = self._thread = None
                    sel.close()
                    return
            try:
                ready = sel.select(self.poll_s)
            except OSError as exc:  # a socket closed under us: its stream is leaving
                log.debug("rtp receive: %s", exc)
                time.sleep(0.01)
                continue
            with self._busy:
                for key, _ in ready:
                    try:
                        key.data.receive_ready(self.batch)
                    except Exception as exc:  # the other calls go on
                        self._drop(sel, key.data)
                        key.data.fail("receive", exc)

    def _drop(self, sel: selectors.BaseSelector, stream: RtpStream) -> None:
        with self._lock, contextlib.suppress(KeyError, ValueError):
            sel.unregister(stream.sock)


RECEIVER = RtpReceiver()


class RtpStream:
    # Keep the time of every packet sent (send_times), for jitter figures. A class
    # attribute, so a benchmark can switch it on for all: RtpStream.record_send_times = True.
    record_send_times: bool = False

    def __init__(
        self,
        local: tuple[str, int],
        remote: tuple[str, int],
        codec: int,
        event_pt: int | None,
        on_audio: Callable[[bytes], None] | None = None,
        on_digit: Callable[[str], None] | None = None,
        pacer: RtpPacer = PACER,
        receiver: RtpReceiver = RECEIVER,
        sock: socket.socket | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        label: str = "",
    ) -> None:
        if codec not in (PCMU, PCMA):
            raise ValueError(f"unsupported codec {codec}")
        self.local, self.remote = local, remote
        self.codec, self.event_pt = codec, event_pt
        self.on_audio, self.on_digit = on_audio, on_digit
        self.pacer, self.receiver = pacer, receiver
        self.on_failure, self.label = on_failure, label
        self.failure: BaseException | None = None
        self.assoc: dict[int, RTP.PayloadType] = {
            PCMU: RTP.PayloadType.PCMU,
            PCMA: RTP.PayloadType.PCMA,
        }
        if event_pt is not None:
            self.assoc[event_pt] = RTP.PayloadType.EVENT
        self._queue: deque[bytes | tuple[int, int, bool]] = deque()
        self._qlock = threading.Lock()
        self._seq = random.randint(0, 0xFFFF)
        self._ts = random.randint(0, 0xFFFFFFFF)
        self._ssrc = random.randint(1, 0xFFFFFFFF)
        self._last_event_ts: int | None = None
        self._event_ts: int | None = None
        self._expected_ts: int | None = None
        self._running = False
        self._closed = False
        self._sockaddr: tuple[tuple[str, int] | None, bytes | None] = (None, None)
        self.sent = 0
        self.received = 0
        self.send_times: list[int] = []  # monotonic ns of each send, for jitter figures
        self._drained = threading.Event()
        self._drained.set()
        self.sending = True  # False while the peer holds the call (sendonly/inactive)
        # The socket the port pool bound at allocation (no window for another process).
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(local)
        self.sock = sock
        self.sock.setblocking(False)

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self.receiver.add(self)
        self.pacer.add(self)

    def close(self) -> None:
        self._running = False
        self.pacer.remove(self)
        self.receiver.remove(self)
        self._drained.set()
        with self._qlock:  # not while the pacer is sending on this socket
            self._closed = True
            self.sock.close()

    def update(
        self, remote: tuple[str, int], codec: int, event_pt: int | None, *, sending: bool
    ) -> None:
        """Apply a re-INVITE: the peer's address, codec and DTMF type; hold stops sending."""
        if codec not in (PCMU, PCMA):
            raise ValueError(f"unsupported codec {codec}")
        assoc = {PCMU: RTP.PayloadType.PCMU, PCMA: RTP.PayloadType.PCMA}
        if event_pt is not None:
            assoc[event_pt] = RTP.PayloadType.EVENT
        with self._qlock:
            self.remote, self.codec, self.event_pt = remote, codec, event_pt
            self.assoc, self.sending = assoc, sending

    def fail(self, direction: str, exc: BaseException) -> None:
        """The pacer or receiver hit an error on this stream: it no longer sends or
        receives, and its owner ends the call (on the pacer's or receiver's thread)."""
        self.failure = exc
        self._running = False
        self._drained.set()
        log.error(
            "call %s: RTP %s to %s failed, ending the call: %r",
            self.label or "?",
            direction,
            self.remote,
            exc,
            exc_info=exc,
        )
        if self.on_failure is not None:
            try:
                self.on_failure(exc)
            except Exception:
                log.exception("call %s: ending the call after its RTP failure", self.label)

    # -- sending --------------------------------------------------------------
    def play(self, pcm16: bytes) -> None:
        """Queue 8 kHz 16-bit PCM for sending."""
        frames = [pcm16[i : i + FRAME_BYTES] for i in range(0, len(pcm16), FRAME_BYTES)]
        if frames and len(frames[-1]) < FRAME_BYTES:
            frames[-1] = frames[-1].ljust(FRAME_BYTES, b"\x00")
        with self._qlock:
            self._queue.extend(frames)
            if self._queue:
                self._drained.clear()

    def stop_playback(self) -> None:
        with self._qlock:
            self._queue.clear()
            self._drained.set()

    def send_dtmf(self, digits: str, ms: int = 160, gap_ms: int = 100) -> None:
        """Queue RFC 2833 events (one event per key, then a gap of silence)."""
        if self.event_pt is None:
            raise ValueError("the peer did not offer telephone-event")
        with self._qlock:
            for key in digits:
                code = EVENTS.index(key.upper())
                steps = max(1, ms // 20)
                for i in range(1, steps + 1):
                    self._queue.append((code, i * FRAME_SAMPLES, False))
                self._queue.extend([(code, steps * FRAME_SAMPLES, True)] * 3)
                self._queue.extend([SILENCE] * max(1, gap_ms // 20))
            self._drained.clear()

    def wait_played(
        self,
        timeout: float,
        interrupted: Callable[[], bool] = lambda: False,
        poll_s: float = 0.05,
    ) -> bool:
        """Block until the queue is sent; False when interrupted or timed out.

        Woken by the pacer when the queue runs dry; `interrupted` is checked every
        `poll_s` (it was every 10 ms: 100 GIL grabs a second per call while playing).
        """
        end = time.monotonic() + timeout
        while self._queue:
            if interrupted() or time.monotonic() > end or not self._running:
                return False
            self._drained.wait(min(poll_s, max(0.0, end - time.monotonic())))
        return True

    def _encode(self, frame: bytes) -> bytes:
        if self.codec == PCMU:
            return g711.lin2ulaw(frame)
        return g711.lin2alaw(frame)

    def send_tick(self) -> None:
        with self._qlock:
            if self._closed:
                return
            if self._queue:
                item = self._queue.popleft()
                if not self._queue:
                    self._drained.set()
            else:
                item = SILENCE
            if not self.sending:  # on hold: the prompt runs on unheard, time goes on
                self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
                self._event_ts = None
                return
            if isinstance(item, tuple):
                packet = self._event_packet(*item)
            else:
                header = struct.pack("!BBHII", 0x80, self.codec, self._seq, self._ts, self._ssrc)
                packet = header + self._encode(item)
                self._event_ts = None
            # Under _qlock: close() cannot close (and the kernel reuse) the fd meanwhile.
            error = self._send(packet)
        if error is not None:
            log.debug("rtp send to %s failed: %s", self.remote, error)
            return
        if self.record_send_times:
            self.send_times.append(time.monotonic_ns())
        self.sent += 1
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF

    def _send(self, packet: bytes) -> OSError | None:
        """Send one packet to the peer; the error, or None once it is sent."""
        if self._sockaddr[0] != self.remote:
            self._sockaddr = (self.remote, _sockaddr_in(self.remote))
        sockaddr = self._sockaddr[1]
        if _SENDTO is None or sockaddr is None:
            try:
                self.sock.sendto(packet, self.remote)
            except OSError as exc:
                return exc
            return None
        sent = _SENDTO(
            self.sock.fileno(), packet, len(packet), _MSG_DONTWAIT, sockaddr, len(sockaddr)
        )
        if sent < 0:
            code = ctypes.get_errno()
            return OSError(code, errno.errorcode.get(code, str(code)))
        return None

    def _event_packet(self, code: int, duration: int, end: bool) -> bytes:
        # All packets of one key share the timestamp of its start; the first has the marker.
        first = self._event_ts is None
        if first:
            self._event_ts = self._ts
        assert self.event_pt is not None
        marker = 0x80 if first else 0
        header = struct.pack(
            "!BBHII", 0x80, marker | self.event_pt, self._seq, self._event_ts or 0, self._ssrc
        )
        flags = (0x80 if end else 0) | 10  # E bit, volume -10 dBm0
        body = struct.pack("!BBH", code, flags, duration)
        return header + body

    # -- receiving ------------------------------------------------------------
    def receive_ready(self, limit: int = 16) -> None:
        """Read and handle up to `limit` packets waiting on the socket (receiver thread)."""
        for _ in range(limit):
            if not self._running:
                return
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed
            try:
                self.handle_packet(data)
            except Exception as exc:  # a bad packet must not end the call
                log.debug("rtp packet from peer dropped: %s", exc)

    def handle_packet(self, data: bytes) -> None:
        msg = parse_rtp(data, self.assoc)
        if msg is None:
            return
        self.received += 1
        if msg.payload_type == RTP.PayloadType.EVENT:
            self._event(msg)
            return
        if msg.payload_type == RTP.PayloadType.PCMU:
            pcm = g711.ulaw2lin(msg.payload)
        elif msg.payload_type == RTP.PayloadType.PCMA:
            pcm = g711.alaw2lin(msg.payload)
        else:
            return
        gap = 0
        if self._expected_ts is not None:
            gap = (msg.timestamp - self._expected_ts) & 0xFFFFFFFF
            if gap > 8000 * 2:  # reordered, or a new stream: don't invent seconds of audio
                gap = 0
        self._expected_ts = (msg.timestamp + len(msg.payload)) & 0xFFFFFFFF
        if self.on_audio is not None:
            if gap:
                self.on_audio(b"\x00" * (gap * 2))  # what was not sent is silence
            self.on_audio(pcm)

    def _event(self, msg: RtpPacket) -> None:
        # One key is one event timestamp; its packets repeat (and end with 3 copies).
        # Keying on the timestamp, not only the marker bit, survives a lost first packet.
        if not msg.payload or msg.timestamp == self._last_event_ts:
            return
        self._last_event_ts = msg.timestamp
        code = msg.payload[0]
        if code < len(EVENTS) and self.on_digit is not None:
            self.on_digit(EVENTS[code])


class RtpPacket(NamedTuple):
    payload_type: RTP.PayloadType
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


_HEADER = struct.Struct("!BBHII")


def parse_rtp(data: bytes, assoc: dict[int, RTP.PayloadType]) -> RtpPacket | None:
    """An RTP packet of a payload type in `assoc`; None for anything else.

    CSRCs, a header extension and padding are skipped (RFC 3550 5.1, 5.3.1).
    """
    if len(data) < 12:
        return None
    first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        return None
    kind = assoc.get(second & 0x7F)
    if kind is None:
        return None
    start = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(data) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data)
    if first & 0x20 and end > start:  # padding: the last byte counts the padding bytes
        end -= data[-1]
    if end < start:
        return None
    return RtpPacket(kind, bool(second & 0x80), seq, ts, ssrc, data[start:end])


class NoRtpPort(RuntimeError):
    """Every port of the RTP range is taken (by our calls or by other processes)."""


class PortPool:
    """Even RTP ports from a configured range; a port is free again at hang-up.

    A port is bound when it is allocated and the socket is held until the call's
    stream takes it (`take`) and the call releases it: probing a port, closing
    the probe and binding later let another process (a campaign run, a second
    `ivr serve`) take the same port in between. No SO_REUSEADDR, so a port another
    process holds is skipped.
    """

    def __init__(self, host: str, low: int, high: int) -> None:
        self.host, self.low, self.high = host, low, high
        self._held: dict[int, socket.socket] = {}
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            for port in range(self.low + (self.low % 2), self.high, 2):
                if port in self._held:
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.bind((self.host, port))
                except OSError:
                    sock.close()
                    continue
                self._held[port] = sock
                return port
        raise NoRtpPort(f"no free RTP port in {self.low}-{self.high}")

    def take(self, port: int) -> socket.socket | None:
        """The socket bound for `port` (the stream uses it; the pool closes it at release)."""
        with self._lock:
            return self._held.get(port)

    def release(self, port: int) -> None:
        with self._lock:
            sock = self._held.pop(port, None)
        if sock is not None:
            sock.close()

    @property
    def in_use(self) -> int:
        return len(self._held)
