"""Calls a dead process left open: closed as `interrupted` at start-up, nothing lost.

When the process holding calls dies (kill -9, power loss, OOM), their rows stay
`in-progress` and what the callers said is on disk only as spooled statements
(SIP) or at the provider (Twilio). `close_interrupted` is the one start-up entry
point: a transport names its calls (provider and node) and how to get their
audio back (`recover`); each call is then closed in its own unit of work:

- status `interrupted`, ended at its last sign of life (the last event or the
  last audio spooled), counted on /metrics;
- every recovered statement stored as a recording (pending transcription), every
  one that could not be recovered counted as lost and named in the call's events;
- a draft made from it, flagged `interrupted` (the console shows 通话中断), when
  an inbound caller had said something or chosen a category; a call cut in the
  greeting or menu leaves no draft;
- transcription submitted after the commit; the transcript fills in the draft.

SIP (ivr.transports.sip.recovery) recovers the node's spooled statements. Twilio
plugs in the same way: `provider="twilio"`, `node=None`, `open_before` a time
no live call can have started before, and a `recover` that re-fetches each
call's recording by its RecordingSid (from the call's events) into `Recovered`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from ivr.calls.recordings import store_recording
from ivr.intake.drafts import create_draft
from ivr.phones import mask_number
from ivr.runtime import metrics
from ivr.store.models import Call, CallEvent, Recording, Ticket

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Recovered:
    """A statement of an interrupted call, as its transport got it back."""

    provider_recording_id: str
    data: bytes | None  # None: it was being recorded but its audio is lost
    audio_format: str = "wav"
    duration_s: float | None = None
    speech: bool = True  # the audio holds more than silence
    last_heard: datetime | None = None  # when audio last reached the disk
    error: str | None = None  # why it is lost


Recover = Callable[[Call], Sequence[Recovered]]


@dataclass(frozen=True)
class Closed:
    call_id: int
    provider_call_id: str
    recordings: tuple[int, ...]
    lost: int
    ticket: str | None


def close_interrupted(
    app: Hotline,
    *,
    provider: str,
    node: str | None,
    recover: Recover,
    transcribe: Callable[[int], None],
    open_before: datetime | None = None,
) -> list[Closed]:
    """Close the calls of `provider` (held by `node`, or any node when None) that are
    still `in-progress` (and started before `open_before`, when given)."""
    query = select(Call.id).where(Call.provider == provider, Call.status == "in-progress")
    if node is not None:
        query = query.where(Call.node == node)
    if open_before is not None:
        query = query.where(Call.started_at < open_before)
    with app.db.read() as s:
        ids = list(s.scalars(query.order_by(Call.id)))
    closed: list[Closed] = []
    for call_id in ids:
        try:
            done = _close(app, call_id, recover)
        except Exception:  # the others are still closed; this one is tried at the next start
            log.exception("interrupted call %d could not be closed", call_id)
            continue
        if done is None:
            continue
        closed.append(done)
        for rid in done.recordings:
            try:
                transcribe(rid)
            except Exception:
                log.exception("recording %d waits for `ivr transcribe --pending`", rid)
    if closed:
        log.warning(
            "%d call(s) interrupted by the last stop of this node closed (%s)",
            len(closed),
            provider,
        )
    return closed


def _close(app: Hotline, call_id: int, recover: Recover) -> Closed | None:
    with app.db.session() as s:
        call = s.scalars(select(Call).where(Call.id == call_id).with_for_update()).first()
        if call is None or call.status != "in-progress":
            return None  # closed meanwhile (another node's start, a late status)
        parts = list(recover(call))
        stored: list[Recording] = []
        lost = [p for p in parts if p.data is None]
        for part in parts:
            if part.data is not None:
                rec = store_recording(
                    app,
                    s,
                    call,
                    part.provider_recording_id,
                    data=part.data,
                    audio_format=part.audio_format,
                    duration_s=part.duration_s,
                )
                stored.append(rec)
        now = app.clock.now()
        last = max(
            [e.at for e in call.events] + [p.last_heard for p in parts if p.last_heard],
            default=now,
        )
        call.status = INTERRUPTED
        call.ended_at = min(last, now)
        if call.answered_at:
            call.duration_s = max(0.0, (call.ended_at - call.answered_at).total_seconds())
        state = call.flow_state.get("state", {})
        variables = state.get("vars", {}) if isinstance(state, dict) else {}
        said = any(p.speech for p in parts if p.data is not None)
        chose = bool(variables.get("category"))
        had_ticket = s.scalars(select(Ticket.id).where(Ticket.call_id == call.id)).first()
        ticket = None
        # Only the inbound flow takes statements; a survey call cut is only closed.
        if call.direction == "inbound" and had_ticket is None and stored and (said or chose):
            ticket = create_draft(
                app, s, call, variables.get("category"), variables.get("emergency_rule")
            )
            ticket.intake = {**(ticket.intake or {}), INTERRUPTED: True}
        s.add(
            CallEvent(
                call=call,
                at=now,
                kind="note",
                name=INTERRUPTED,
                data={
                    "recordings": [r.provider_recording_id for r in stored],
                    "lost": [{"id": p.provider_recording_id, "error": p.error} for p in lost],
                    "draft": ticket.number if ticket else None,
                },
            )
        )
        metrics.CALLS.labels(direction=call.direction, outcome=INTERRUPTED).inc()
        metrics.CALLS_INTERRUPTED.labels(provider=call.provider).inc()
        if lost:
            metrics.RECORDINGS_LOST.labels(provider=call.provider).inc(len(lost))
        log.warning(
            "call %s/%s from %s interrupted: %d statement(s) recovered, %d lost, draft %s",
            call.provider,
            call.provider_call_id,
            mask_number(call.from_number),
            len(stored),
            len(lost),
            ticket.number if ticket else "none",
        )
        return Closed(
            call.id,
            call.provider_call_id,
            tuple(r.id for r in stored),
            len(lost),
            ticket.number if ticket else None,
        )
