"""A hostile SIP peer for bench/sip_load.py --hostile: it runs beside the load's calls.

Round after round, until stopped, it sends
- INVITEs with SDP the IVR cannot serve (RTP/SAVP only, IPv6, port 99999, not SDP),
  from a trunk peer's address, so they reach the SDP checks: 488/400 expected;
- a BYE and a re-INVITE for a live call of the load (as if it had sniffed the
  Call-ID) from another address with made-up tags: 481 expected, the call goes on;
- re-INVITEs on a call of its own that move its media, change the codec and hold.
Every answer is counted by kind; an unexpected one is listed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from harness.sipkit import unknown_peer_ip
from harness.sipkit.rawdialog import RawUac, RtpSink, audio_sdp

LOCAL = "127.0.0.1"
BAD_OFFERS = {
    "srtp": {"proto": "RTP/SAVP"},
    "ipv6": {"session_c": "IN IP6 ::1"},
}
EXPECTED = {"bad-sdp": {400, 488}, "spoofed": {481}, "reinvite": {200, 488}}


class HostilePeer:
    def __init__(self, ivr: Any) -> None:
        self.ivr = ivr
        self.counts: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.stream: Any = None  # its own call's RTP stream (left out of the jitter figures)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hostile-peer", daemon=True)

    def start(self) -> HostilePeer:
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(60)
        return {"answers": dict(self.counts), "unexpected": self.unexpected[:20]}

    def _note(self, kind: str, statuses: list[int]) -> None:
        final = statuses[-1] if statuses else None
        self.counts[f"{kind} {final}"] += 1
        if final not in EXPECTED[kind]:
            self.unexpected.append(f"{kind}: {statuses}")

    def _run(self) -> None:
        sinks = [RtpSink(), RtpSink()]
        own = RawUac(self.ivr.hostport)
        try:
            reply = own.invite("12345", audio_sdp(LOCAL, sinks[0].port))
            if reply.final is None or reply.final.status != 200:
                self.unexpected.append(f"own call not answered: {reply.statuses}")
                return
            session = self.ivr.phone.sessions.get(own.call_id)
            self.stream = session.media.stream if session is not None else None
            n = 0
            while not self._stop.wait(0.2):
                n += 1
                self._bad_invite(n)
                self._spoof()
                self._reinvite(own, sinks, n)
            own.bye()
        finally:
            own.close()
            for s in sinks:
                s.close()

    def _bad_invite(self, n: int) -> None:
        uac = RawUac(self.ivr.hostport)
        try:
            kind = n % 4
            if kind < 2:
                sdp = audio_sdp(LOCAL, 40000, **list(BAD_OFFERS.values())[kind])
            elif kind == 2:
                sdp = audio_sdp(LOCAL, 40000).replace("m=audio 40000", "m=audio 99999")
            else:
                sdp = "this is not SDP\r\n"
            self._note("bad-sdp", uac.invite("12345", sdp).statuses)
        finally:
            uac.close()

    def _spoof(self) -> None:
        live = list(self.ivr.phone.sessions)
        if not live:
            return
        call_id = random.choice(live)
        spoofer = RawUac(self.ivr.hostport, local_ip=unknown_peer_ip())
        spoofer.uri = spoofer.remote_target = f"sip:12345@{LOCAL}"
        try:
            for method in ("BYE", "INVITE"):
                body = audio_sdp(LOCAL, 9) if method == "INVITE" else ""
                msg = spoofer.build(method, call_id=call_id, to_tag="guessed", body=body)
                self._note("spoofed", spoofer.send(msg, timeout=3).statuses)
        finally:
            spoofer.close()

    def _reinvite(self, own: RawUac, sinks: list[RtpSink], n: int) -> None:
        sink = sinks[n % 2]
        codecs = "0 101" if n % 3 else "8 101"
        direction = "sendonly" if n % 5 == 0 else "sendrecv"
        sdp = audio_sdp(LOCAL, sink.port, codecs=codecs, direction=direction, version=n + 1)
        self._note("reinvite", own.reinvite(sdp).statuses)
        for s in sinks:
            s.drain()
