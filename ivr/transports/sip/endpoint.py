"""The SIP socket: receive, parse, match transactions, send to the right place.

Replaces pyVoIP 1.6.8's SIPClient, which sent every message to the configured
server whatever its source (notes: "Every SIP message is sent to (server,
port)"), put 0.0.0.0 in headers (defect 9) and had no transaction layer.
Responses here go where the request's Via says (with received/rport filled in,
RFC 3581), retransmitted requests get the same answer again, and bad datagrams
are logged (rate-limited) and dropped without stopping the loop; a bad request
that can be answered gets 400 with the reason. The socket is bound exclusively:
a second process on the same port fails at start (`SipPortInUse`) instead of
silently sharing it (with SO_REUSEADDR, Linux lets both bind a UDP port and
hands each datagram to one of them). With `tcp` the same
port also listens on TCP (transport_tcp.py): a message goes over the transport its
top Via names, responses back on the connection their request came in on.
"""

from __future__ import annotations

import errno
import logging
import queue
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.transports.sip.message import (
    SipMessage,
    SipParseError,
    param,
    parse,
    salvage,
    stamp_via,
    via_sent_by,
    via_transport,
    with_tag,
)
from ivr.transports.sip.ratelog import RateLimitedLog
from ivr.transports.sip.transport_tcp import TcpTransport

log = logging.getLogger(__name__)

Addr = tuple[str, int]
USER_AGENT = "hotline-ivr"
T1 = 0.5
# The methods we accept (REFER is only ever sent, for the operator transfer).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY"
# SIP extensions (option tags) we implement: none, so `Require: 100rel` gets 420.
SUPPORTED: frozenset[str] = frozenset()


class SipPortInUse(RuntimeError):
    """The SIP port is held by another process (a second `ivr serve`, a campaign run)."""


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(12)}@{host}"


@dataclass
class ClientTransaction:
    branch: str
    method: str
    responses: queue.Queue[SipMessage] = field(default_factory=queue.Queue)
    provisional: threading.Event = field(default_factory=threading.Event)
    final: threading.Event = field(default_factory=threading.Event)


@dataclass
class EndpointStats:
    received: int = 0
    malformed: int = 0
    sent: int = 0
    retransmissions_absorbed: int = 0


class SipEndpoint:
    def __init__(
        self,
        bind_host: str,
        port: int,
        public_host: str,
        on_request: Callable[[SipMessage, Addr], None],
        *,
        tcp: bool = False,
    ) -> None:
        if public_host in ("", "0.0.0.0"):
            raise ValueError("the SIP public host must be a real address, not 0.0.0.0")
        self.bind_host, self.port, self.public_host = bind_host, port, public_host
        self.on_request = on_request
        self.stats = EndpointStats()
        self._sock, self.tcp = self._bind(bind_host, port, tcp)
        self.port = self._sock.getsockname()[1]
        self._sock.settimeout(0.25)
        self._clients: dict[tuple[str, str], ClientTransaction] = {}
        self._answered: OrderedDict[tuple[str, str, str], SipMessage] = OrderedDict()
        # The ACK sent for each answered outbound INVITE, to re-send when the callee
        # retransmits its 200 (our ACK was lost).
        self._acks: OrderedDict[str, tuple[SipMessage, Addr]] = OrderedDict()
        self._lock = threading.Lock()
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="sip-rx", daemon=True)
        self.peer_log = RateLimitedLog(log)

    def _bind(self, host: str, port: int, tcp: bool) -> tuple[socket.socket, TcpTransport | None]:
        """The UDP socket and, with `tcp`, the TCP listener on the same port number
        (with port 0 the kernel's UDP pick, tried again if TCP has that port taken).

        No SO_REUSEADDR on the UDP socket: with it Linux lets a second process bind the
        same port and hands each datagram to one of them."""
        for attempt in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind((host, port))
            except OSError as exc:
                udp.close()
                raise self._in_use(host, port, exc) from exc
            if not tcp:
                return udp, None
            try:
                return udp, TcpTransport(host, udp.getsockname()[1], self._stream_message)
            except OSError as exc:
                udp.close()
                if port or attempt == 19:
                    raise self._in_use(host, port, exc) from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _in_use(host: str, port: int, exc: OSError) -> Exception:
        if exc.errno != errno.EADDRINUSE:
            return exc
        log.error("SIP port %s:%d is already in use by another process", host, port)
        return SipPortInUse(
            f"SIP port {host}:{port} is already in use by another process (another "
            "`ivr serve`?); stop it or set another sip.port"
        )

    @property
    def contact_host(self) -> str:
        return f"{self.public_host}:{self.port}"

    def start(self) -> None:
        self._running = True
        self._thread.start()
        if self.tcp is not None:
            self.tcp.start()

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._sock.close()
        if self.tcp is not None:
            self.tcp.stop()

    # -- sending --------------------------------------------------------------
    def send(self, msg: SipMessage, addr: Addr) -> None:
        """Send over the transport the message's top Via names (UDP or TCP)."""
        try:
            data = msg.encode()
            if self.tcp is not None and via_transport(msg.get("Via") or "") == "TCP":
                self.tcp.send(data, addr)
            else:
                self._sock.sendto(data, addr)
            self.stats.sent += 1
        except OSError as exc:
            log.warning("SIP send %s to %s:%d failed: %s", msg.summary(), *addr, exc)

    def via(self, branch: str, transport: str = "UDP") -> str:
        return f"SIP/2.0/{transport.upper()} {self.contact_host};branch={branch};rport"

    def contact(self, req: SipMessage, user: str = "ivr") -> str:
        """Our Contact in answers to `req`: over TCP it says so (RFC 3261 19.1.1), so the
        peer's requests in the dialog come over TCP too."""
        tcp = via_transport(req.get("Via") or "") == "TCP"
        return f"<sip:{user}@{self.contact_host}{';transport=tcp' if tcp else ''}>"

    @staticmethod
    def reply_address(req: SipMessage, addr: Addr) -> Addr:
        """Where the response to `req` (received from `addr`) goes: back on its TCP
        connection, to its source when the peer asked (rport, RFC 3581), else to
        the Via's sent-by."""
        via = req.get("Via") or ""
        if not via or via_transport(via) == "TCP" or param(via, "rport") is not None:
            return addr
        return via_sent_by(via)

    def respond(
        self,
        req: SipMessage,
        addr: Addr,
        status: int,
        reason: str,
        *,
        to_tag: str | None = None,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> SipMessage:
        resp = SipMessage(status=status, reason=reason)
        for v in req.get_all("Via"):
            resp.add("Via", v)
        for v in req.get_all("Record-Route"):
            resp.add("Record-Route", v)
        resp.add("From", req.get("From") or "")
        to = req.get("To") or ""
        resp.add("To", with_tag(to, to_tag) if to_tag and status > 100 else to)
        resp.add("Call-ID", req.call_id)
        resp.add("CSeq", req.get("CSeq") or "")
        resp.add("Server", USER_AGENT)
        for n, v in headers or []:
            resp.add(n, v)
        if body:
            resp.add("Content-Type", "application/sdp")
        resp.body = body
        self.send(resp, self.reply_address(req, addr))
        if req.method != "ACK":
            with self._lock:
                self._answered[(req.branch, req.method or "", req.call_id)] = resp
                while len(self._answered) > 4096:
                    self._answered.popitem(last=False)
        return resp

    def request(
        self, msg: SipMessage, addr: Addr, *, retransmit_until: float = 32 * T1
    ) -> ClientTransaction:
        """Send a request and retransmit it (RFC 3261 timers A/E) until answered."""
        tx = ClientTransaction(msg.branch, msg.cseq[1])
        with self._lock:
            self._clients[(tx.branch, tx.method)] = tx
        self.send(msg, addr)
        # Over TCP the transport delivers or fails: no retransmissions (RFC 3261 17.1.1.2).
        if msg.method != "ACK" and via_transport(msg.get("Via") or "") != "TCP":
            threading.Thread(
                target=self._retransmit,
                args=(tx, msg, addr, retransmit_until),
                daemon=True,
                name="sip-retx",
            ).start()
        return tx

    def _retransmit(self, tx: ClientTransaction, msg: SipMessage, addr: Addr, until: float) -> None:
        interval, start = T1, time.monotonic()
        done = tx.provisional if tx.method == "INVITE" else tx.final
        while not done.wait(interval) and not tx.final.is_set():
            if time.monotonic() - start > until or not self._running:
                return
            self.send(msg, addr)
            interval = min(interval * 2, 4.0)

    def remember_ack(self, ack: SipMessage, addr: Addr) -> None:
        with self._lock:
            self._acks[ack.call_id] = (ack, addr)
            while len(self._acks) > 1024:
                self._acks.popitem(last=False)

    def forget(self, tx: ClientTransaction) -> None:
        with self._lock:
            self._clients.pop((tx.branch, tx.method), None)

    # -- receiving -------------------------------------------------------------
    def _loop(self) -> None:
        while self._running:
            try:
                data, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._running:
                    log.exception("SIP socket error")
                break
            self.stats.received += 1
            if not data.strip():
                continue  # CRLF keep-alive
            try:
                self.handle(data, addr)
            except Exception:  # nothing a peer sends may stop the phone
                log.exception("SIP message from %s:%d not handled", *addr)

    def _stream_message(self, data: bytes, addr: Addr) -> None:
        self.stats.received += 1
        self.handle(data, addr)

    def handle(self, data: bytes, addr: Addr) -> None:
        try:
            msg = parse(data)
        except SipParseError as exc:
            self.stats.malformed += 1
            self._malformed(data, addr, exc)
            return
        if msg.is_request:
            self._request(msg, addr)
        else:
            self._response(msg)

    def _malformed(self, data: bytes, addr: Addr, exc: SipParseError) -> None:
        req = salvage(data)
        answered = req is not None and req.method != "ACK"
        self.peer_log.warning(
            addr[0],
            "malformed",
            "malformed SIP from %s:%d %s: %s",
            addr[0],
            addr[1],
            "answered 400" if answered else "dropped",
            exc,
        )
        if req is not None and answered:
            _stamp(req, addr)
            self.respond(req, addr, 400, f"Bad Request ({exc})"[:200])

    def _request(self, msg: SipMessage, addr: Addr) -> None:
        _stamp(msg, addr)
        key = (msg.branch, msg.method or "", msg.call_id)
        with self._lock:
            previous = self._answered.get(key)
        if previous is not None and msg.method != "ACK":
            self.stats.retransmissions_absorbed += 1
            self.send(previous, self.reply_address(msg, addr))
            return
        if msg.method not in ("ACK", "CANCEL") and (unknown := _unsupported(msg)):
            self.peer_log.warning(
                addr[0],
                "require",
                "%s from %s:%d requires %s: 420",
                msg.method,
                addr[0],
                addr[1],
                ", ".join(unknown),
            )
            self.respond(
                msg, addr, 420, "Bad Extension", headers=[("Unsupported", ", ".join(unknown))]
            )
            return
        if msg.method == "ACK" and msg.branch:
            with self._lock:
                invite_answer = self._answered.get((msg.branch, "INVITE", msg.call_id))
            if invite_answer is not None and (invite_answer.status or 0) >= 300:
                return  # ACK of an error response ends that transaction, nothing more
        self.on_request(msg, addr)

    def _response(self, msg: SipMessage) -> None:
        try:
            method = msg.cseq[1]
        except SipParseError:
            return
        if method == "INVITE" and 200 <= (msg.status or 0) < 300:
            with self._lock:
                cached = self._acks.get(msg.call_id)
            if cached is not None:
                self.send(*cached)  # a retransmitted 200: our ACK was lost
                return
        with self._lock:
            tx = self._clients.get((msg.branch, method))
        if tx is None:
            log.debug("response without transaction: %s", msg.summary())
            return
        status = msg.status or 0
        if status < 200:
            tx.provisional.set()
        else:
            tx.provisional.set()
            tx.final.set()
        tx.responses.put(msg)


def _stamp(msg: SipMessage, source: Addr) -> None:
    """Fill received/rport into the request's top Via, so responses find their way back."""
    for i, (name, value) in enumerate(msg.headers):
        if name == "Via":
            msg.headers[i] = (name, stamp_via(value, source))
            return


def _unsupported(msg: SipMessage) -> list[str]:
    """The option tags in Require that we do not implement (RFC 3261 8.2.2.3)."""
    tags = [t.strip() for v in msg.get_all("Require") for t in v.split(",") if t.strip()]
    return [t for t in tags if t.lower() not in SUPPORTED]
