"""SDP offers and answers for narrowband audio: PCMU, PCMA and RFC 2833 telephone-event.

PCMU is preferred: pyVoIP 1.6.8 sent mu-law bytes labelled as PCMA (defect 3);
our encoder is per codec, and our offer lists PCMU first so peers pick it.

An offer is read as RFC 4566/3264 say: every m= section has its own connection
address (a media-level c= overrides the session-level one) and direction; the
first audio section we can serve is used (plain RTP/AVP, an IPv4 address, a port
other than 0, PCMU or PCMA) and every other section is declined with port 0 in
the answer. Our o= line keeps its session id for the whole call and its version
goes up by one each time our description changes (RFC 3264 section 8).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

PCMU, PCMA = 0, 8
CODECS = {PCMU: "PCMU/8000", PCMA: "PCMA/8000"}
DEFAULT_EVENT_PT = 101
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# Our direction for each direction the peer offers (RFC 3264 6.1): hold is answered in kind.
ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
PROFILE = "RTP/AVP"


class SdpError(ValueError):
    """An offer we cannot accept (488 Not Acceptable Here)."""


class SdpSyntaxError(SdpError):
    """An offer we cannot even read (400 Bad Request)."""


@dataclass(frozen=True)
class MediaLine:
    """One m= section of an offer, with the connection address and direction in force for it."""

    media: str
    port: int
    proto: str
    fmts: tuple[str, ...]
    host: str
    ip6: bool
    names: Mapping[int, str]  # rtpmap: payload type -> encoding name, lower case
    direction: str

    def declined(self) -> str:
        return f"m={self.media} 0 {self.proto} {' '.join(self.fmts)}"

    def problem(self) -> str | None:
        """Why we cannot serve this section; None when we can."""
        if self.media != "audio":
            return f"{self.media} is not audio"
        if self.port == 0:
            return "the audio stream is declined (port 0)"
        if self.proto.upper() != PROFILE:
            return f"{self.proto} is not supported (only {PROFILE}: no SRTP)"
        if self.ip6:
            return "an IPv6 connection address (our media is IPv4)"
        if not self.host:
            return "no connection address"
        if not self.codecs:
            return "no common codec (PCMU or PCMA) offered"
        return None

    @property
    def codecs(self) -> tuple[int, ...]:
        pts = (int(f) for f in self.fmts if f.isdigit())
        return tuple(
            pt
            for pt in pts
            if pt in CODECS
            and self.names.get(pt, CODECS[pt].lower()).startswith(CODECS[pt][:4].lower())
        )

    @property
    def event_pt(self) -> int | None:
        pts = (int(f) for f in self.fmts if f.isdigit())
        return next(
            (pt for pt in pts if self.names.get(pt, "").startswith("telephone-event")), None
        )


@dataclass(frozen=True)
class MediaOffer:
    host: str
    port: int
    codecs: tuple[int, ...]  # static payload types the peer accepts, in its order
    event_pt: int | None  # telephone-event payload type, if offered
    direction: str = "sendrecv"  # the peer's, as offered
    index: int = 0  # which m= section this is
    sections: tuple[MediaLine, ...] = field(default=(), compare=False)

    @property
    def wants_audio(self) -> bool:
        """Whether the peer wants to receive our audio (false when it put us on hold)."""
        return self.direction in ("sendrecv", "recvonly")


def parse(body: bytes) -> MediaOffer:
    """The audio stream of an offer or answer we will use; SdpError says why there is none."""
    sections = parse_sections(body)
    problems = [(line, line.problem()) for line in sections]
    for i, (line, problem) in enumerate(problems):
        if problem is None:
            return MediaOffer(
                line.host, line.port, line.codecs, line.event_pt, line.direction, i, sections
            )
    audio = [p for line, p in problems if line.media == "audio"]
    raise SdpError(audio[0] if audio else "no audio stream offered")


@dataclass
class _Level:
    """What c= and a= lines set at session level, or for one m= section while reading."""

    host: str | None = None
    ip6: bool | None = None
    direction: str | None = None
    names: dict[int, str] = field(default_factory=dict)
    media: tuple[str, int, str, tuple[str, ...]] | None = None  # m=: media, port, proto, fmts


def parse_sections(body: bytes) -> tuple[MediaLine, ...]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpSyntaxError("SDP is not UTF-8") from exc
    session = _Level()
    sections: list[_Level] = []
    for n, line in enumerate(ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpSyntaxError(f"SDP line {n + 1} is not type=value: {line[:40]!r}")
        kind, value = line[0], line[2:]
        level = sections[-1] if sections else session
        if kind == "m":
            sections.append(_Level(media=_media(value)))
        elif kind == "c":
            level.host, level.ip6 = _connection(value)
        elif kind == "a":
            name, _, rest = value.partition(":")
            if name in DIRECTIONS:
                level.direction = name
            elif name == "rtpmap":
                pt, _, enc = rest.partition(" ")
                if pt.isdigit():
                    level.names[int(pt)] = enc.strip().lower()
    if not sections:
        raise SdpSyntaxError("SDP has no m= line")
    return tuple(_section(m, session) for m in sections)


def _media(value: str) -> tuple[str, int, str, tuple[str, ...]]:
    parts = value.split()
    port = parts[1].split("/")[0] if len(parts) >= 4 else ""
    if not port.isdigit() or int(port) > 65535:
        raise SdpSyntaxError(f"bad media line m={value!r}")
    return parts[0], int(port), parts[2], tuple(parts[3:])


def _connection(value: str) -> tuple[str, bool]:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpSyntaxError(f"bad connection line c={value!r}")
    return parts[2].split("/")[0], parts[1] == "IP6"


def _section(m: _Level, session: _Level) -> MediaLine:
    assert m.media is not None
    media, port, proto, fmts = m.media
    host = m.host if m.host is not None else session.host or ""
    ip6 = m.ip6 if m.ip6 is not None else bool(session.ip6)
    direction = m.direction or session.direction or "sendrecv"
    if host == "0.0.0.0":  # RFC 2543 hold: "do not send to me"
        direction = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)
    return MediaLine(media, port, proto, fmts, host, ip6, m.names, direction)


class LocalSdp:
    """Our description for one call: a stable o= session id, a version that moves with it."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.session_id = secrets.randbelow(2**62) + 1
        self.version = self.session_id
        self._last: str | None = None

    def render(
        self,
        port: int,
        codecs: tuple[int, ...],
        event_pt: int | None,
        direction: str = "sendrecv",
        remote: MediaOffer | None = None,
    ) -> bytes:
        pts = [*codecs, *([event_pt] if event_pt is not None else [])]
        ours = [
            f"m=audio {port} {PROFILE} {' '.join(str(p) for p in pts)}",
            *(f"a=rtpmap:{pt} {CODECS[pt]}" for pt in codecs),
        ]
        if event_pt is not None:
            ours += [f"a=rtpmap:{event_pt} telephone-event/8000", f"a=fmtp:{event_pt} 0-15"]
        ours += ["a=ptime:20", f"a={direction}"]
        media: list[str] = []
        sections = remote.sections if remote is not None and remote.sections else (None,)
        for i, section in enumerate(sections):
            if section is None or (remote is not None and i == remote.index):
                media += ours
            else:
                media.append(section.declined())
        description = "\r\n".join(["s=hotline-ivr", f"c=IN IP4 {self.host}", "t=0 0", *media])
        if self._last is not None and description != self._last:
            self.version += 1
        self._last = description
        origin = f"o=hotline-ivr {self.session_id} {self.version} IN IP4 {self.host}"
        return f"v=0\r\n{origin}\r\n{description}\r\n".encode()

    def offer(self, port: int) -> bytes:
        return self.render(port, (PCMU, PCMA), DEFAULT_EVENT_PT)

    def answer(self, remote: MediaOffer, port: int) -> tuple[bytes, int]:
        """Our answer and the chosen codec."""
        codec = choose_codec(remote)
        direction = ANSWER_DIRECTION.get(remote.direction, "sendrecv")
        return self.render(port, (codec,), remote.event_pt, direction, remote), codec


def choose_codec(remote: MediaOffer) -> int:
    """PCMU whenever the peer offers it, else its first of PCMU/PCMA."""
    if not remote.codecs:
        raise SdpError("no common codec (PCMU or PCMA) offered")
    return PCMU if PCMU in remote.codecs else remote.codecs[0]


def offer(host: str, port: int) -> bytes:
    return LocalSdp(host).offer(port)


def answer(remote: MediaOffer, host: str, port: int) -> tuple[bytes, int]:
    """Our answer and the chosen codec; PCMU whenever the peer offers it."""
    return LocalSdp(host).answer(remote, port)
