"""A caller made of raw datagrams that keeps its dialog: for in-dialog requests SIPp cannot
easily vary (spoofed tags, re-INVITEs with chosen SDP, hold) and for watching the RTP the
other side sends to each of its media ports."""

from __future__ import annotations

import random
import socket
import struct
import time
from dataclasses import dataclass

from .ports import LOOPBACK
from .sipmsg import SipMessage


def _token(n: int = 10) -> str:
    return "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=n))


def audio_sdp(
    host: str,
    port: int,
    *,
    codecs: str = "0 101",
    proto: str = "RTP/AVP",
    direction: str = "sendrecv",
    session_c: str | None = None,
    media_c: str | None = None,
    extra_media: str = "",
    version: int = 1,
) -> str:
    """One audio offer; `session_c`/`media_c` are whole c= values (default: IN IP4 host at
    session level only); `extra_media` is appended m= sections (before ours if it starts
    with "!")."""
    names = {"0": "PCMU/8000", "8": "PCMA/8000", "18": "G729/8000", "101": "telephone-event/8000"}
    ours = [f"m=audio {port} {proto} {codecs}"]
    if media_c:
        ours.append(f"c={media_c}")
    ours += [f"a=rtpmap:{pt} {names[pt]}" for pt in codecs.split() if pt in names]
    ours.append(f"a={direction}")
    lines = [
        "v=0",
        f"o=rawuac 4242 {version} IN IP4 {host}",
        "s=rawuac",
        f"c={session_c if session_c is not None else f'IN IP4 {host}'}",
        "t=0 0",
    ]
    if extra_media.startswith("!"):
        lines += [extra_media[1:], *ours]
    else:
        lines += [*ours, *([extra_media] if extra_media else [])]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class Reply:
    """Every response to one request, the final one last (empty when nothing came)."""

    responses: list[SipMessage]

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses if r.status is not None]

    @property
    def final(self) -> SipMessage | None:
        last = self.responses[-1] if self.responses else None
        return last if last is not None and (last.status or 0) >= 200 else None


class RtpSink:
    """A UDP port that counts the RTP packets arriving, by payload type."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = int(self.sock.getsockname()[1])

    def drain(self) -> int:
        """Discard what is queued; how many packets that was."""
        self.sock.setblocking(False)
        n = 0
        try:
            while True:
                self.sock.recv(2048)
                n += 1
        except BlockingIOError:
            return n
        finally:
            self.sock.setblocking(True)

    def collect(self, count: int, timeout: float) -> list[int]:
        """Payload types of up to `count` packets, waiting at most `timeout` s in all."""
        types: list[int] = []
        end = time.monotonic() + timeout
        while len(types) < count and (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                break
            if len(data) >= 12 and data[0] >> 6 == 2:
                types.append(data[1] & 0x7F)
        return types

    def send_silence(self, to: tuple[str, int], packets: int = 5) -> None:
        """A few PCMU packets, so the other side knows the stream is alive."""
        ssrc = random.getrandbits(32)
        for i in range(packets):
            header = struct.pack("!BBHII", 0x80, 0, i, i * 160, ssrc)
            self.sock.sendto(header + b"\xff" * 160, to)

    def close(self) -> None:
        self.sock.close()


class RawUac:
    """One call from a UDP socket of its own: INVITE, ACK, then any in-dialog request."""

    def __init__(self, target: tuple[str, int], *, local_ip: str = LOOPBACK) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.local = self.sock.getsockname()
        self.call_id = f"{_token(16)}@{self.local[0]}"
        self.from_tag = _token(8)
        self.to_tag = ""
        self.cseq = 1
        self.remote_target = ""
        self.uri = ""
        self.answer: SipMessage | None = None  # the final response to the INVITE

    def close(self) -> None:
        self.sock.close()

    def _via(self, sent_by: str | None = None, rport: bool = True) -> str:
        where = sent_by or f"{self.local[0]}:{self.local[1]}"
        return f"SIP/2.0/UDP {where};branch=z9hG4bK{_token()}" + (";rport" if rport else "")

    def build(
        self,
        method: str,
        *,
        uri: str | None = None,
        body: str = "",
        from_tag: str | None = None,
        to_tag: str | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        via: str | None = None,
        extra: list[str] | None = None,
    ) -> bytes:
        ftag = self.from_tag if from_tag is None else from_tag
        ttag = self.to_tag if to_tag is None else to_tag
        lines = [
            f"{method} {uri or self.remote_target or self.uri} SIP/2.0",
            f"Via: {via or self._via()}",
            "Max-Forwards: 70",
            f"From: <sip:13800138000@{self.local[0]}:{self.local[1]}>;tag={ftag}",
            f"To: <{self.uri}>" + (f";tag={ttag}" if ttag else ""),
            f"Call-ID: {call_id or self.call_id}",
            f"CSeq: {cseq if cseq is not None else self.cseq} {method}",
            f"Contact: <sip:13800138000@{self.local[0]}:{self.local[1]}>",
            *(extra or []),
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data: bytes, timeout: float = 5.0, *, until_final: bool = True) -> Reply:
        """Send a datagram and gather the responses (to the final one) within `timeout`."""
        self.sock.sendto(data, self.target)
        got: list[SipMessage] = []
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                raw, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            msg = SipMessage.parse(raw)
            if msg.is_request:
                continue  # the other side's own requests are not what we wait for
            got.append(msg)
            if until_final and (msg.status or 0) >= 200:
                break
        return Reply(got)

    def invite(self, user: str, sdp: str, *, extra: list[str] | None = None) -> Reply:
        """INVITE `user` at the target; a 2xx is ACKed and starts the dialog."""
        self.uri = f"sip:{user}@{self.target[0]}:{self.target[1]}"
        reply = self.send(self.build("INVITE", body=sdp, extra=extra), timeout=10)
        final = self.answer = reply.final
        if final is not None and 200 <= (final.status or 0) < 300:
            to = final.header("To") or ""
            self.to_tag = to.split("tag=", 1)[1].split(";")[0] if "tag=" in to else ""
            contact = final.header("Contact") or ""
            self.remote_target = contact.split("<", 1)[-1].split(">", 1)[0]
            self.ack()
        return reply

    def ack(self, body: str = "") -> None:
        self.sock.sendto(self.build("ACK", cseq=self.cseq, body=body), self.target)

    def reinvite(self, sdp: str, *, ack_sdp: str = "") -> Reply:
        """A re-INVITE (offerless when `sdp` is empty: then `ack_sdp` is our answer)."""
        self.cseq += 1
        reply = self.send(self.build("INVITE", body=sdp), timeout=5)
        if reply.final is not None and 200 <= (reply.final.status or 0) < 300:
            self.ack(ack_sdp)
        return reply

    def bye(self, **spoof: str) -> Reply:
        self.cseq += 1
        return self.send(self.build("BYE", **spoof), timeout=5)  # type: ignore[arg-type]
