"""Start-up of a SIP node after a crash: its calls left open are closed as interrupted,
their spooled statements (ivr.calls.recordings.StatementSpool) stored and drafted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ivr.asr.audio import rms
from ivr.calls.interrupted import Closed, Recovered, close_interrupted
from ivr.calls.recordings import pcm16_wav, read_spooled, spool_path
from ivr.store.models import Call
from ivr.transports.sip.media import SPEECH_RMS

if TYPE_CHECKING:
    from ivr.app import Hotline

FRAME = 320  # 20 ms of 16-bit PCM at 8 kHz


def has_speech(pcm16: bytes) -> bool:
    return any(rms(pcm16[i : i + FRAME]) > SPEECH_RMS for i in range(0, len(pcm16), FRAME))


def recover_spooled(app: Hotline) -> Callable[[Call], list[Recovered]]:
    def recover(call: Call) -> list[Recovered]:
        path = spool_path(app, "sip", call.provider_call_id)
        rid = f"{call.provider_call_id}-{len(call.recordings) + 1}"
        waiting = call.flow_state.get("state", {}).get("waiting")
        if not path.exists():
            if waiting == "recording":  # it was being recorded: its spool is gone
                return [Recovered(rid, None, error=f"no spooled statement {path.name}")]
            return []
        try:
            pcm, rate = read_spooled(path)
            heard = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except (OSError, ValueError) as exc:
            return [Recovered(rid, None, error=str(exc))]
        duration = len(pcm) / 2 / rate
        last = max(call.recordings, key=lambda r: r.id, default=None)
        if last is not None and abs((last.duration_s or 0) - duration) < 0.01:
            return []  # stored already; the process died before it removed the spool
        return [
            Recovered(
                rid,
                pcm16_wav(pcm, rate),
                "wav",
                duration_s=duration,
                speech=has_speech(pcm),
                last_heard=heard,
            )
        ]

    return recover


def close_interrupted_calls(
    app: Hotline, node: str, transcribe: Callable[[int], None]
) -> list[Closed]:
    """Close this node's calls that a dead process left open (run before taking calls)."""
    closed = close_interrupted(
        app, provider="sip", node=node, recover=recover_spooled(app), transcribe=transcribe
    )
    for c in closed:  # stored as recordings now
        spool_path(app, "sip", c.provider_call_id).unlink(missing_ok=True)
    return closed
