"""SDP offers and answers for narrowband audio: PCMU, PCMA and RFC 2833 telephone-event.

PCMU is preferred: pyVoIP 1.6.8 sent mu-law bytes labelled as PCMA (defect 3);
our encoder is per codec, and our offer lists PCMU first so peers pick it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

PCMU, PCMA = 0, 8
CODECS = {PCMU: "PCMU/8000", PCMA: "PCMA/8000"}
DEFAULT_EVENT_PT = 101


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class MediaOffer:
    host: str
    port: int
    codecs: tuple[int, ...]  # static payload types the peer accepts, in its order
    event_pt: int | None  # telephone-event payload type, if offered


def parse(body: bytes) -> MediaOffer:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8") from exc
    host = ""
    port = -1
    pts: list[int] = []
    names: dict[int, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("c=") and (not host or port < 0):
            parts = line[2:].split()
            if len(parts) == 3:
                host = parts[2].split("/")[0]
        elif line.startswith("m=audio") and port < 0:
            parts = line[2:].split()
            if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"bad media line {line!r}")
            port = int(parts[1].split("/")[0])
            if not 0 < port <= 0xFFFF:  # 99999 crashed the RTP sender (issue 14, item 1)
                raise SdpError(f"bad media port {port}")
            pts = [int(p) for p in parts[3:] if p.isdigit()]
        elif line.startswith("a=rtpmap:"):
            pt, _, name = line[len("a=rtpmap:") :].partition(" ")
            if pt.isdigit():
                names[int(pt)] = name.strip().lower()
    if not host or port < 0:
        raise SdpError("SDP has no audio connection address or port")
    event = next((pt for pt in pts if names.get(pt, "").startswith("telephone-event")), None)
    codecs = tuple(
        pt
        for pt in pts
        if pt in CODECS and names.get(pt, CODECS[pt].lower()).startswith(CODECS[pt][:4].lower())
    )
    return MediaOffer(host, port, codecs, event)


def build(
    host: str,
    port: int,
    codecs: tuple[int, ...],
    event_pt: int | None,
    session_id: int | None = None,
) -> bytes:
    sid = session_id or int(time.time())
    pts = [*codecs, *([event_pt] if event_pt is not None else [])]
    lines = [
        "v=0",
        f"o=hotline-ivr {sid} {sid} IN IP4 {host}",
        "s=hotline-ivr",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(str(p) for p in pts)}",
        *(f"a=rtpmap:{pt} {CODECS[pt]}" for pt in codecs),
    ]
    if event_pt is not None:
        lines += [f"a=rtpmap:{event_pt} telephone-event/8000", f"a=fmtp:{event_pt} 0-15"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def offer(host: str, port: int) -> bytes:
    return build(host, port, (PCMU, PCMA), DEFAULT_EVENT_PT)


def answer(remote: MediaOffer, host: str, port: int) -> tuple[bytes, int]:
    """Our answer and the chosen codec; PCMU whenever the peer offers it."""
    if not remote.codecs:
        raise SdpError("no common codec (PCMU or PCMA) offered")
    codec = PCMU if PCMU in remote.codecs else remote.codecs[0]
    return build(host, port, (codec,), remote.event_pt), codec
