"""`ivr call`: a test caller for checking a deployment from the outside."""

from __future__ import annotations

import time
from pathlib import Path

from ivr.transports.sip.audiofile import read_pcm8k
from ivr.transports.sip.dialer import DialResult, SipDialer
from ivr.transports.sip.session import CallSession


def place_test_call(
    dialer: SipDialer,
    uri: str,
    *,
    digits: str = "",
    audio: Path | None = None,
    wait_s: float = 4.0,
    max_s: float = 90.0,
) -> DialResult:
    """Call `uri`, press `digits` once the greeting is over, speak `audio` then #.

    Waits for the remote BYE (or hangs up after `max_s`).
    """
    pcm = read_pcm8k(audio) if audio else b""

    def script(session: CallSession, result: DialResult) -> None:
        media = session.media
        media.stream.start()
        start = time.monotonic()
        media.wait_quiet(1.0, wait_s + 30)  # the greeting and the menu
        session.note("greeting heard")
        if digits and not media.hung_up.is_set():
            media.stream.send_dtmf(digits)
            session.note(f"sent digits {digits}")
            media.last_loud = 0.0
            media.wait_quiet(0.8, 30)  # the statement prompt and its beep
            session.note("prompt heard")
        if pcm and not media.hung_up.is_set():
            media.play(pcm)
            session.note(f"sent audio {len(pcm) / 16000:.1f}s")
            media.stream.send_dtmf("#")
            session.note("sent #")
        if media.hung_up.wait(max(0.0, max_s - (time.monotonic() - start))):
            session.note("remote hung up")
        else:
            session.note("giving up: hanging up")
            session.hang_up()
        result.vars["received_packets"] = media.stream.received

    return dialer.place(uri, script, flow="inbound", caller_id="10000")
