"""One webhook, one step: Twilio requests advance a call's flow and get TwiML back.

Idempotency: each TwiML document numbers the request Twilio will make next
(`seq` in the action URLs). A step is processed in one transaction that locks
the call row, checks the call's step ledger (CallEvent notes "twilio-step"),
advances the flow and stores the TwiML it answered under that number. The same
step requested again (Twilio retrying, a duplicate delivery) gets the stored
TwiML back and changes nothing; a step number that is not the call's next one
is refused. Status callbacks are deduplicated on (CallSid, CallStatus).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.calls.service import (
    CallService,
    StepResult,
    UnknownCall,
    final_status,
)
from ivr.flow import CallerHangup, CallState, Event, RecordingFinished
from ivr.flow.verbs import verb_from_dict
from ivr.lines import resolve_line
from ivr.phones import caller_id, mask_number
from ivr.store.models import Call, CallEvent
from ivr.transports.twilio import PROVIDER
from ivr.transports.twilio.context import OutboundContext
from ivr.transports.twilio.transcript_wait import TranscriptWait
from ivr.transports.twilio.twiml import Links, TwimlRenderer

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)

STEP_NOTE = "twilio-step"
STATUS_NOTE = "status"
ANSWERED_BY_NOTE = "answered-by"
TRANSFER_NOTE = "transfer"
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
CALL_STATUSES = FINAL_STATUSES | {"queued", "initiated", "ringing", "in-progress"}
MACHINE_ANSWERS = ("machine_", "fax")


class StepOutOfOrder(ValueError):
    """A step number that is neither the call's next step nor one it already answered."""


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and str(answered_by).startswith(MACHINE_ANSWERS)


@dataclass(frozen=True)
class InboundCall:
    call_sid: str
    from_number: str | None
    to_number: str | None
    forwarded_from: str | None = None
    diversion: list[str] = field(default_factory=list)
    history_info: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StatusUpdate:
    call_sid: str
    status: str
    duration_s: float | None = None
    answered_by: str | None = None
    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    forwarded_from: str | None = None
    context: OutboundContext | None = None


class TwilioCalls(CallService):
    """The call service with Twilio's step ledger and TwiML rendering."""

    def __init__(self, app: Hotline, renderer: TwimlRenderer) -> None:
        super().__init__(app)
        self.renderer = renderer
        self.transcripts = TranscriptWait(app)

    # -- starting calls ----------------------------------------------------------
    def start_inbound(self, call: InboundCall, links: Links) -> str:
        """Start the call's flow once; a repeated voice request gets the stored first TwiML."""

        def start() -> StepResult:
            return self.start(
                provider=PROVIDER,
                provider_call_id=call.call_sid,
                from_number=call.from_number,
                to_number=call.to_number,
                diversion=call.diversion or None,
                history_info=call.history_info or None,
                forwarded_from=call.forwarded_from,
            )

        result = _once(start)
        return self._first_step(call.call_sid, result, links)

    def start_outbound(
        self,
        call_sid: str,
        *,
        from_number: str | None,
        to_number: str | None,
        context: OutboundContext,
        answered_by: str | None,
        links: Links,
    ) -> str:
        """The answered survey call: run its flow, or hang up on an answering machine."""
        if is_machine(answered_by):
            return self._machine(call_sid, from_number, to_number, context, answered_by)
        if context.flow not in self.app.flows:
            raise UnknownCall(f"no flow {context.flow!r}")

        def start() -> StepResult:
            return self.start(
                provider=PROVIDER,
                provider_call_id=call_sid,
                from_number=from_number,
                to_number=to_number,
                flow=context.flow,
                direction="outbound",
                variables=dict(context.vars),
                line_number=context.line_number or self.app.settings.hotline,
            )

        result = _once(start)
        return self._first_step(call_sid, result, links, answered_by=answered_by)

    def _first_step(
        self, call_sid: str, result: StepResult, links: Links, answered_by: str | None = None
    ) -> str:
        with self.app.db.session() as s:
            call = self._locked(s, call_sid)
            stored = _ledger(s, call).get(0)
            if stored is not None:
                return stored
            flow = self.app.flows[call.flow]
            twiml = self.renderer.render(result.verbs, result.vars, flow, links, 1, result.ended)
            now = self.app.clock.now()
            call.answered_at = call.answered_at or now
            if answered_by:
                s.add(_note(call, now, ANSWERED_BY_NOTE, {"answered_by": answered_by}))
            s.add(_note(call, now, STEP_NOTE, {"seq": 0, "twiml": twiml}))
            return twiml

    def _machine(
        self,
        call_sid: str,
        from_number: str | None,
        to_number: str | None,
        context: OutboundContext,
        answered_by: str | None,
    ) -> str:
        twiml = self.renderer.hangup()
        with self.app.db.session() as s:
            call = self._ensure_call(
                s,
                StatusUpdate(
                    call_sid,
                    "in-progress",
                    direction="outbound-api",
                    from_number=from_number,
                    to_number=to_number,
                    context=context,
                ),
            )
            stored = _ledger(s, call).get(0)
            if stored is not None:
                return stored
            now = self.app.clock.now()
            call.answered_at = call.answered_at or now
            s.add(_note(call, now, ANSWERED_BY_NOTE, {"answered_by": answered_by}))
            s.add(_note(call, now, STEP_NOTE, {"seq": 0, "twiml": twiml}))
        log.info("call %s/%s answered by %s: not surveyed", PROVIDER, call_sid, answered_by)
        return twiml

    # -- the steps that follow ------------------------------------------------------
    def step(self, call_sid: str, seq: int, event: Event, links: Links) -> str:
        """Advance the call by the event of request `seq` once; a repeat gets the same TwiML."""
        with self.app.db.session() as s:
            call = self._locked(s, call_sid)
            ledger = _ledger(s, call)
            if seq in ledger:
                log.info(
                    "call %s/%s step %d repeated: stored TwiML replayed", PROVIDER, call_sid, seq
                )
                return ledger[seq]
            expected = max(ledger, default=0) + 1
            if seq != expected:
                raise StepOutOfOrder(
                    f"step {seq} is not the next step of call {call_sid} (expected {expected})"
                )
            previous = list(call.flow_state.get("last_verbs") or [])
            state = CallState.from_dict(call.flow_state.get("state", {}))
            engine = self.engine(call.flow, s, call)
            result = self._advance(s, call, engine, state, event)
            verbs = result.verbs
            if not verbs and not result.ended:
                # An event the flow ignored: keep waiting for what it waits for.
                verbs = tuple(verb_from_dict(v) for v in previous)
            flow = self.app.flows[call.flow]
            twiml = self.renderer.render(verbs, result.vars, flow, links, seq + 1, result.ended)
            s.add(_note(call, self.app.clock.now(), STEP_NOTE, {"seq": seq, "twiml": twiml}))
            return twiml

    def recorded(
        self, call_sid: str, seq: int, event: RecordingFinished, links: Links, poll: int
    ) -> str:
        """The statement is recorded: hold the caller (a prompt, then `<Redirect>` polls)
        until its transcript exists, at most `asr.transcript_wait_s`, then step the flow,
        so that the draft, and what the caller hears (emergency or out-of-scope advice,
        or the read-back), come from what was said."""
        sid = str((event.recording or {}).get("recording_sid") or "")
        if event.reason == "hangup" or not sid or poll >= self.transcripts.max_polls:
            return self.step(call_sid, seq, event, links)
        # The record action itself is always answered with the hold (a retry of it gets
        # the same document); the polls step the flow once the transcript is there.
        if poll > 0 and (self._answered(call_sid, seq) or self.transcripts.ready(sid)):
            return self.step(call_sid, seq, event, links)
        with self.app.db.read() as s:
            call = _call(s, call_sid)
            if call is None:
                raise UnknownCall(f"no call {PROVIDER}/{call_sid}")
            flow = self.app.flows[call.flow]
            variables = dict(CallState.from_dict(call.flow_state.get("state", {})).vars)
        return self.renderer.hold(flow, variables, links, seq, poll + 1, event, announce=poll == 0)

    def transfer_ended(self, call_sid: str, seq: int, dial_status: str, links: Links) -> str:
        """The operator transfer's <Dial> ended: hang up after a call that was answered,
        else the fallback prompt (never silence); once per step, a retry is replayed."""
        with self.app.db.session() as s:
            call = self._locked(s, call_sid)
            ledger = _ledger(s, call)
            if seq in ledger:
                return ledger[seq]
            now = self.app.clock.now()
            if dial_status in ("completed", "answered"):
                twiml = self.renderer.hangup()
            else:
                flow = self.app.flows[call.flow]
                variables = dict(CallState.from_dict(call.flow_state.get("state", {})).vars)
                twiml = self.renderer.transfer_failed(flow, variables, links)
                log.warning(
                    "call %s/%s: transfer to the operator ended %s: fallback prompt",
                    PROVIDER,
                    call_sid,
                    dial_status,
                )
            s.add(_note(call, now, TRANSFER_NOTE, {"dial_status": dial_status}))
            s.add(_note(call, now, STEP_NOTE, {"seq": seq, "twiml": twiml}))
            return twiml

    def _answered(self, call_sid: str, seq: int) -> bool:
        """The step was already answered (a retried poll): step() replays it."""
        with self.app.db.read() as s:
            call = _call(s, call_sid)
            return call is not None and seq in _ledger(s, call)

    def _locked(self, s: Session, call_sid: str) -> Call:
        """The call row, locked for this transaction on every backend (SQLite included)."""
        if s.get_bind().dialect.name == "sqlite":
            # SQLite ignores FOR UPDATE; a no-op write as the first statement takes the lock.
            calls = Call.__table__
            s.connection().execute(
                update(calls)
                .where(calls.c.provider == PROVIDER, calls.c.provider_call_id == call_sid)
                .values(status=calls.c.status)
            )
        call = self.find(s, PROVIDER, call_sid)
        if call is None:
            raise UnknownCall(f"no call {PROVIDER}/{call_sid}")
        return call

    # -- status callbacks ------------------------------------------------------------
    def update_status(self, upd: StatusUpdate) -> str:
        """Apply a call status callback once: 'applied', 'duplicate' or 'ignored'."""
        with self.app.db.session() as s:
            try:
                call = self._locked(s, upd.call_sid)
            except UnknownCall:
                if upd.status not in FINAL_STATUSES:
                    log.info(
                        "status %s for call %s before its first webhook: noted nowhere",
                        upd.status,
                        upd.call_sid,
                    )
                    return "ignored"
                call = self._ensure_call(s, upd)
            seen = {
                (e.data or {}).get("status")
                for e in _notes(s, call, STATUS_NOTE)
                if (e.data or {}).get("source") == PROVIDER
            }
            if upd.status in seen:
                return "duplicate"
            now = self.app.clock.now()
            if upd.answered_by and not any(_notes(s, call, ANSWERED_BY_NOTE)):
                s.add(_note(call, now, ANSWERED_BY_NOTE, {"answered_by": upd.answered_by}))
            if upd.status in FINAL_STATUSES:
                state = CallState.from_dict(call.flow_state.get("state", {}))
                if state.started and not state.ended:
                    # The caller hung up while the flow waited (e.g. while speaking): the
                    # flow runs its hang-up branch (the draft is still created).
                    engine = self.engine(call.flow, s, call)
                    self._advance(s, call, engine, state, CallerHangup())
                call.status = final_status(call.status, upd.status)
                call.ended_at = call.ended_at or now
                if upd.duration_s is not None:
                    call.duration_s = upd.duration_s
            elif upd.status == "in-progress":
                call.answered_at = call.answered_at or now
            s.add(
                _note(
                    call,
                    now,
                    STATUS_NOTE,
                    {"status": upd.status, "duration_s": upd.duration_s, "source": PROVIDER},
                )
            )
            log.info(
                "call %s/%s status %s%s",
                PROVIDER,
                upd.call_sid,
                upd.status,
                f" after {upd.duration_s:.0f} s" if upd.duration_s is not None else "",
            )
            return "applied"

    def _ensure_call(self, s: Session, upd: StatusUpdate) -> Call:
        """The call's row, created bare (no flow run) for a call that never reached a flow."""
        existing = self.find(s, PROVIDER, upd.call_sid)
        if existing is not None:
            return existing
        ctx = upd.context
        outbound = (upd.direction or "").startswith("outbound") or ctx is not None
        if ctx is not None and ctx.line_number and self.app.settings.line(ctx.line_number):
            line, source, original = ctx.line_number, "dialed", None
        else:
            match = resolve_line(
                self.app.settings,
                upd.from_number if outbound else upd.to_number,
                forwarded_from=upd.forwarded_from,
            )
            line, source, original = match.line.number, match.source, match.original
        now = self.app.clock.now()
        call = Call(
            provider=PROVIDER,
            provider_call_id=upd.call_sid,
            direction="outbound" if outbound else "inbound",
            flow=ctx.flow if ctx is not None else ("survey" if outbound else "inbound"),
            from_number=caller_id(upd.from_number),
            to_number=caller_id(upd.to_number),
            line_number=line,
            original_number=original,
            line_source=source,
            status=upd.status,
            flow_state={},
            started_at=now,
        )
        try:
            with s.begin_nested():
                s.add(call)
        except IntegrityError:
            found = self.find(s, PROVIDER, upd.call_sid)
            assert found is not None
            return found
        log.info(
            "call %s/%s to %s recorded without a flow (%s)",
            PROVIDER,
            upd.call_sid,
            mask_number(call.to_number),
            upd.status,
        )
        return call


def _call(s: Session, call_sid: str) -> Call | None:
    """The call's row without a lock (for read-only transactions)."""
    return s.scalars(
        select(Call).where(Call.provider == PROVIDER, Call.provider_call_id == call_sid)
    ).first()


def _note(call: Call, at: Any, name: str, data: Mapping[str, Any]) -> CallEvent:
    return CallEvent(call_id=call.id, at=at, kind="note", name=name, data=dict(data))


def _notes(s: Session, call: Call, name: str) -> list[CallEvent]:
    return list(
        s.scalars(
            select(CallEvent)
            .where(CallEvent.call_id == call.id, CallEvent.kind == "note", CallEvent.name == name)
            .order_by(CallEvent.id)
        )
    )


def _ledger(s: Session, call: Call) -> dict[int, str]:
    out: dict[int, str] = {}
    for e in _notes(s, call, STEP_NOTE):
        data = e.data or {}
        if isinstance(data.get("seq"), int) and isinstance(data.get("twiml"), str):
            out.setdefault(data["seq"], data["twiml"])
    return out


def _once(start: Any) -> StepResult:
    """Start a call; a concurrent duplicate start that lost the insert race replays instead."""
    try:
        result: StepResult = start()
    except IntegrityError:
        result = start()
    return result
