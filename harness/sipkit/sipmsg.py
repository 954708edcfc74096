"""Just enough SIP message parsing and building for assertions and raw probes."""

from __future__ import annotations

import random
import re
import socket
from dataclasses import dataclass

from ivr.transports.sip.transport_tcp import split_messages

COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "e": "content-encoding",
    "s": "subject",
}


def canonical(name: str) -> str:
    """Lower-case header name with compact forms expanded (`i` -> `call-id`)."""
    low = name.strip().lower()
    return COMPACT.get(low, low)


@dataclass(frozen=True)
class SipMessage:
    """A parsed SIP request or response; header lookups are case-insensitive."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: str
    raw: str

    @classmethod
    def parse(cls, data: bytes | str) -> SipMessage:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        head, sep, body = text.partition("\r\n\r\n")
        if not sep:
            head, _, body = text.partition("\n\n")
        lines = re.split(r"\r?\n", head)
        start = lines[0].strip() if lines else ""
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # folded continuation
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, colon, value = line.partition(":")
            if colon:
                headers.append((name.strip(), value.strip()))
        return cls(start, tuple(headers), body, text)

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/")

    @property
    def method(self) -> str | None:
        """Request method, or for a response the method of its CSeq."""
        if self.is_request:
            return self.start_line.split(" ", 1)[0]
        cseq = self.header("CSeq")
        return cseq.split()[-1] if cseq else None

    @property
    def status(self) -> int | None:
        if self.is_request:
            return None
        parts = self.start_line.split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def request_uri(self) -> str | None:
        parts = self.start_line.split()
        return parts[1] if self.is_request and len(parts) > 1 else None

    def header(self, name: str) -> str | None:
        """First value of a header (compact forms match), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """All values of a header in message order (compact forms match)."""
        want = canonical(name)
        return [v for n, v in self.headers if canonical(n) == want]

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")

    def __str__(self) -> str:
        return self.start_line


def _rand(n: int = 10) -> str:
    return "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=n))


def build_request(
    method: str,
    uri: str,
    *,
    local: tuple[str, int],
    from_user: str = "sipkit",
    to_uri: str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    extra_headers: list[str] | None = None,
    body: str = "",
    content_type: str | None = None,
) -> bytes:
    """A well-formed request over UDP from `local` (Via/From/Contact use it)."""
    host, port = local
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{_rand()};rport",
        "Max-Forwards: 70",
        f"From: <sip:{from_user}@{host}:{port}>;tag={_rand(8)}",
        f"To: <{to_uri or uri}>",
        f"Call-ID: {call_id or _rand(16)}@{host}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{from_user}@{host}:{port}>",
        "User-Agent: sipkit",
    ]
    lines += extra_headers or []
    if body:
        lines.append(f"Content-Type: {content_type or 'application/sdp'}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def pcmu_sdp(host: str, port: int, session: str = "sipkit") -> str:
    """An SDP offer/answer for PCMU + telephone-event at host:port."""
    return (
        "v=0\r\n"
        f"o=- {random.randrange(1, 1 << 30)} 1 IN IP4 {host}\r\n"
        f"s={session}\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=sendrecv\r\n"
    )


class StreamReader:
    """SIP messages read one at a time from a TCP or TLS socket (Content-Length framing)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._ready: list[bytes] = []

    def read(self, timeout: float = 30.0) -> SipMessage:
        """The next message; raises TimeoutError after `timeout` s, EOFError when closed."""
        self.sock.settimeout(timeout)
        while not self._ready:
            self._ready, _ = split_messages(self._buffer)
            if self._ready:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the peer closed the connection")
            self._buffer.extend(chunk)
        return SipMessage.parse(self._ready.pop(0))
