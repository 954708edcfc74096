"""SIP messages: a tolerant parser and a serializer.

Replaces pyVoIP 1.6.8's parser (defect 6 in shared/notes/telephony.md): empty
headers, `To:<sip:..>` without a space, compact header names and values that
contain ": " are all accepted, and every occurrence of a repeated header
(several Diversion headers) is kept in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
}
CANONICAL = {
    n.lower(): n
    for n in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Content-Type",
        "Content-Length",
        "Record-Route",
        "Route",
        "Diversion",
        "History-Info",
        "P-Asserted-Identity",
        "User-Agent",
        "Allow",
        "Supported",
        "Expires",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "Refer-To",
        "Referred-By",
        "Event",
        "Subscription-State",
        "Server",
        "Reason",
    )
}
MAX_MESSAGE = 65535
_REQUEST_LINE = re.compile(r"^([A-Z][A-Za-z]*) (\S+) SIP/2\.0$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3})(?: (.*))?$")
REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


class SipParseError(ValueError):
    pass


def canonical(name: str) -> str:
    n = name.strip()
    low = n.lower()
    if low in COMPACT:
        return COMPACT[low]
    return CANONICAL.get(low, n)


@dataclass
class SipMessage:
    method: str | None = None  # requests
    uri: str | None = None
    status: int | None = None  # responses
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical(name).lower()
        return next((v for n, v in self.headers if n.lower() == key), default)

    def get_all(self, name: str) -> list[str]:
        """Every value, in order; comma-joined values stay as one entry."""
        key = canonical(name).lower()
        return [v for n, v in self.headers if n.lower() == key]

    def set(self, name: str, value: str) -> None:
        name = canonical(name)
        self.remove(name)
        self.headers.append((name, value))

    def add(self, name: str, value: str) -> None:
        self.headers.append((canonical(name), value))

    def remove(self, name: str) -> None:
        key = canonical(name).lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != key]

    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.get("CSeq") or "").split()
        if len(raw) != 2 or not raw[0].isdigit():
            raise SipParseError(f"bad CSeq {self.get('CSeq')!r}")
        return int(raw[0]), raw[1].upper()

    @property
    def branch(self) -> str:
        via = self.get("Via") or ""
        return param(via, "branch") or ""

    def encode(self) -> bytes:
        first = (
            f"{self.method} {self.uri} SIP/2.0"
            if self.is_request
            else f"SIP/2.0 {self.status} {self.reason}"
        )
        lines = [first]
        lines += [f"{n}: {v}" for n, v in self.headers if n.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body

    def summary(self) -> str:
        first = f"{self.method} {self.uri}" if self.is_request else f"{self.status} {self.reason}"
        return f"{first} (Call-ID {self.call_id})"


def parse(data: bytes) -> SipMessage:
    """Parse one datagram; SipParseError says what is wrong."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes is too large")
    msg, body = _head(data, strict=True)
    missing = [h for h in REQUIRED if msg.get(h) is None]
    if missing:
        raise SipParseError(f"missing header(s) {', '.join(missing)}")
    msg.cseq  # noqa: B018 - validates the CSeq header
    length = msg.get("Content-Length")
    if length is not None and length.strip().isdigit():
        n = int(length)
        if n > len(body):
            raise SipParseError(f"body shorter ({len(body)}) than Content-Length {n}")
        body = body[:n]
    msg.body = body
    return msg


def salvage(data: bytes) -> SipMessage | None:
    """What can be read of a request `parse` refused, to answer it with 400.

    None unless it is a request with a Via (else a response has nowhere to go);
    header lines that cannot be read are left out.
    """
    try:
        msg, _ = _head(data[:MAX_MESSAGE], strict=False)
    except SipParseError:
        return None
    if not msg.is_request or not msg.get("Via"):
        return None
    return msg


def _head(data: bytes, *, strict: bool) -> tuple[SipMessage, bytes]:
    """The start line and headers (and the raw body); `strict`: refuse bad header lines."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if strict:
            raise SipParseError("start line or headers are not UTF-8") from exc
        text = head.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)  # keep-alive CRLFs before a message
    if not lines:
        raise SipParseError("empty message")
    msg = SipMessage()
    first = lines[0].strip()
    if m := _REQUEST_LINE.match(first):
        msg.method, msg.uri = m.group(1).upper(), m.group(2)
    elif m := _STATUS_LINE.match(first):
        msg.status, msg.reason = int(m.group(1)), m.group(2) or ""
    else:
        raise SipParseError(f"not a SIP start line: {first[:80]!r}")
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation
            n, v = msg.headers[-1]
            msg.headers[-1] = (n, f"{v} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            if not strict:
                continue
            raise SipParseError(f"malformed header line {line[:80]!r}")
        msg.headers.append((canonical(name), value.strip()))
    return msg, body


# ---- header values ------------------------------------------------------

_NAME_ADDR = re.compile(r'^\s*(?:"?([^"<]*)"?\s*)?<([^>]*)>(.*)$')


def param(value: str, name: str) -> str | None:
    """A ;name=value parameter of a header value (outside any <...>)."""
    if ">" in value:
        parts = value.rsplit(">", 1)[1].split(";")
    else:
        parts = value.split(";")[1:]  # the first part is the address or sent-by
    for part in parts:
        k, _, v = part.strip().partition("=")
        if k and k.lower() == name.lower():
            return v.strip().strip('"')
    return None


def addr_uri(value: str) -> str:
    """The URI of a name-addr or addr-spec header value."""
    m = _NAME_ADDR.match(value)
    if m:
        return m.group(2).strip()
    return value.split(";")[0].strip()


def uri_user(uri: str) -> str:
    u = uri.strip().strip("<>")
    for scheme in ("sips:", "sip:", "tel:"):
        if u.lower().startswith(scheme):
            u = u[len(scheme) :]
            break
    return u.split("@")[0].split(";")[0] if "@" in u else u.split(";")[0]


def uri_hostport(uri: str, default_port: int = 5060) -> tuple[str, int]:
    u = uri.strip().strip("<>")
    u = u.split(":", 1)[1] if u.lower().startswith(("sip:", "sips:")) else u
    u = u.split("@", 1)[1] if "@" in u else u
    u = u.split(";")[0].split("?")[0]
    host, _, port = u.partition(":")
    return host, int(port) if port.isdigit() else default_port


def via_sent_by(via: str) -> tuple[str, int]:
    """Where a response to this Via goes (RFC 3261 18.2.2 with rport)."""
    proto_host = via.split(";")[0].split()
    sent_by = proto_host[-1] if proto_host else ""
    host, _, port = sent_by.partition(":")
    received = param(via, "received")
    rport = param(via, "rport")
    return received or host, int(rport) if rport and rport.isdigit() else (
        int(port) if port.isdigit() else 5060
    )


def uri_transport(uri: str) -> str:
    """The transport a SIP URI asks for (its `transport` parameter), upper case; UDP."""
    for part in uri.strip().strip("<>").split("?")[0].split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "transport" and value.strip():
            return value.strip().upper()
    return "UDP"


def via_transport(via: str) -> str:
    """The transport of a Via value, upper case ("UDP", "TCP", ...); "UDP" if unclear."""
    proto = via.split(";")[0].split()
    parts = proto[0].split("/") if proto else []
    return parts[2].upper() if len(parts) == 3 else "UDP"


def with_tag(value: str, tag: str) -> str:
    return value if param(value, "tag") else f"{value};tag={tag}"


def stamp_via(via: str, source: tuple[str, int]) -> str:
    """The top Via value as the server saw it arrive (RFC 3261 18.2.1, RFC 3581).

    `received` is added when the sent-by host is not the source address, and an
    empty `rport` is filled with the source port (with `received`, always): the
    response then goes back the way the request came, through any NAT.
    """
    top, comma, rest = via.partition(",")
    sent_by = top.split(";")[0].split()
    host = sent_by[-1].rsplit(":", 1)[0].strip("[]") if sent_by else ""
    asked_rport = re.search(r";\s*rport\s*(?=;|$)", top) is not None
    if asked_rport:
        top = re.sub(r";\s*rport\s*(?=;|$)", f";rport={source[1]}", top, count=1)
    if (host != source[0] or asked_rport) and param(top, "received") is None:
        top = f"{top.rstrip()};received={source[0]}"
    return top + comma + rest
