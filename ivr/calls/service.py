"""Calls: start one, feed it events, persist its state and audit trail.

Transports (SIP, Twilio, `ivr simulate`) call this; each event is one
transaction holding the call row, so any worker can serve the next event and a
retried request never applies twice what it already applied.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.flow import Action, CallState, Engine, Event, Start, Verb
from ivr.flow.verbs import event_to_dict, verb_from_dict, verb_to_dict
from ivr.intake.drafts import create_draft, latest_transcript
from ivr.lines import LineMatch, resolve_line
from ivr.phones import caller_id, mask_number
from ivr.runtime import metrics
from ivr.runtime.logs import log_context
from ivr.spoken import date_spoken, digits_spoken
from ivr.store.models import Call, CallEvent
from ivr.surveys.outcomes import record_score

if TYPE_CHECKING:
    from ivr.app import Hotline

log = logging.getLogger(__name__)


class UnknownCall(LookupError):
    pass


SILENT = "silent"


def final_status(current: str, reported: str) -> str:
    """A call's status once the telephony reports its end: a plain `completed` says less
    than the outcome the flow already gave it (`silent`)."""
    return current if reported == "completed" and current == SILENT else reported


def silent_call(session: Session, call: Call, variables: Mapping[str, Any]) -> bool:
    """No key pressed and nothing said (scanners, dead air): such a call is no draft.

    Transports tell what they know on the recording reference: `speech` (SIP: the
    level went above line noise), `duration_s` (Twilio: 0 once silence is trimmed);
    else a transcript already stored with no text counts as nothing said."""
    if variables.get("emergency_rule"):
        return False
    pressed = session.scalars(
        select(CallEvent.id).where(
            CallEvent.call_id == call.id, CallEvent.kind == "event", CallEvent.name == "Digits"
        )
    ).first()
    if pressed is not None:
        return False
    ref = variables.get("recording")
    if not isinstance(ref, Mapping):
        return True  # no statement recorded either
    if "speech" in ref:
        return not ref["speech"]
    if ref.get("duration_s") is not None:
        return float(ref["duration_s"]) <= 0
    _, transcript = latest_transcript(session, call.id)
    return transcript is not None and not transcript.normalized_text.strip()


@dataclass(frozen=True)
class StepResult:
    call_id: int
    verbs: tuple[Verb, ...]
    ended: bool
    vars: Mapping[str, Any]


class CallService:
    def __init__(self, app: Hotline) -> None:
        self.app = app

    # -- actions the flows name -------------------------------------------
    def _actions(self, session: Session, call: Call) -> dict[str, Action]:
        app = self.app

        def draft(variables: Mapping[str, Any]) -> dict[str, Any]:
            if silent_call(session, call, variables):
                log.info("call %s/%s was silent: no draft", call.provider, call.provider_call_id)
                return {"scope_kind": SILENT, "call_outcome": SILENT}
            ticket = create_draft(
                app, session, call, variables.get("category"), variables.get("emergency_rule")
            )
            return {
                "ticket_no": ticket.number,
                "ticket_no_spoken": digits_spoken(ticket.number),
                "contact_due": ticket.contact_due.isoformat(),
                "contact_due_spoken": date_spoken(ticket.contact_due),
                "due_date": ticket.due_date.isoformat(),
                "due_date_spoken": date_spoken(ticket.due_date),
                "scope_kind": ticket.scope_kind,
                "scope_advice": ticket.scope_advice or "",
            }

        def score(variables: Mapping[str, Any]) -> dict[str, Any]:
            return record_score(session, variables, app.clock.now())

        return {"create_draft": draft, "record_score": score}

    def engine(self, flow: str, session: Session, call: Call) -> Engine:
        return Engine(
            self.app.flows[flow],
            self._actions(session, call),
            max_events=self.app.settings.max_events_per_call,
        )

    # -- call lifecycle ------------------------------------------------------
    def find(self, session: Session, provider: str, provider_call_id: str) -> Call | None:
        return session.scalars(
            select(Call)
            .where(Call.provider == provider, Call.provider_call_id == provider_call_id)
            .with_for_update()
        ).first()

    def start(
        self,
        *,
        provider: str,
        provider_call_id: str,
        from_number: str | None,
        to_number: str | None,
        flow: str = "inbound",
        direction: str = "inbound",
        diversion: str | list[str] | None = None,
        history_info: str | list[str] | None = None,
        forwarded_from: str | None = None,
        variables: Mapping[str, Any] | None = None,
        line_number: str | None = None,
        node: str | None = None,
    ) -> StepResult:
        """Create the call (once) and run its flow up to the first wait.

        Inbound calls find their line from the numbers; outbound calls name it. `node`
        names the process's node that holds the call (SIP), for crash recovery.
        """
        with self.app.db.session() as session:
            call = self.find(session, provider, provider_call_id)
            if call is not None:  # a retried start: answer with what was answered
                return self._replay(call)
            match = resolve_line(
                self.app.settings,
                line_number or to_number,
                diversion=diversion,
                history_info=history_info,
                forwarded_from=forwarded_from,
            )
            now = self.app.clock.now()
            call = Call(
                provider=provider,
                provider_call_id=provider_call_id,
                direction=direction,
                flow=flow,
                from_number=caller_id(from_number),
                to_number=caller_id(to_number) if line_number else match.dialed,
                line_number=match.line.number,
                original_number=match.original,
                line_source=match.source,
                status="in-progress",
                flow_state={},
                started_at=now,
                answered_at=now if direction == "inbound" else None,
                node=node,
            )
            session.add(call)
            session.flush()
            log.info(
                "call %s/%s from %s to %s: line %s (%s)",
                provider,
                provider_call_id,
                mask_number(call.from_number),
                match.dialed,
                match.line.number,
                match.source,
            )
            start_vars = {**self._line_vars(match), **(variables or {})}
            engine = self.engine(flow, session, call)
            return self._advance(session, call, engine, CallState(), Start(start_vars))

    def _line_vars(self, match: LineMatch) -> dict[str, Any]:
        return {
            "line_number": match.line.number,
            "line_name": match.line.name,
            "greeting": match.line.greeting,
            "operator": self.app.settings.operator_transfer,
        }

    def handle(self, provider: str, provider_call_id: str, event: Event) -> StepResult:
        """Feed one event to a call's flow; raises UnknownCall for a call never started."""
        with log_context(call_id=provider_call_id), self.app.db.session() as session:
            call = self.find(session, provider, provider_call_id)
            if call is None:
                raise UnknownCall(f"no call {provider}/{provider_call_id}")
            state = CallState.from_dict(call.flow_state.get("state", {}))
            engine = self.engine(call.flow, session, call)
            return self._advance(session, call, engine, state, event)

    def _advance(
        self, session: Session, call: Call, engine: Engine, state: CallState, event: Event
    ) -> StepResult:
        now = self.app.clock.now()
        audit = [("event", type(event).__name__, event_to_dict(event))]
        result = engine.step(state, event)
        audit += [("verb", type(v).__name__, verb_to_dict(v)) for v in result.verbs]
        for kind, name, data in audit:
            session.add(CallEvent(call=call, at=now, kind=kind, name=name, data=_jsonable(data)))
        call.flow_state = {
            "state": _jsonable(result.state.to_dict()),
            "last_verbs": [_jsonable(verb_to_dict(v)) for v in result.verbs],
        }
        if result.state.ended and call.ended_at is None:
            call.status = str(result.state.vars.get("call_outcome") or "completed")
            call.ended_at = now
            metrics.CALLS.labels(direction=call.direction, outcome=call.status).inc()
            if call.answered_at:
                call.duration_s = (now - call.answered_at).total_seconds()
        session.flush()
        return StepResult(call.id, result.verbs, result.state.ended, dict(result.state.vars))

    def _replay(self, call: Call) -> StepResult:
        state = CallState.from_dict(call.flow_state.get("state", {}))
        verbs = tuple(verb_from_dict(v) for v in call.flow_state.get("last_verbs", []))
        return StepResult(call.id, verbs, state.ended, dict(state.vars))

    def hung_up(self, provider: str, provider_call_id: str) -> None:
        """The transport's word that the line is closed (BYE sent or received): the real
        end time and duration. The flow's end, which comes first, only set them for a
        transport that never says (the read-back and goodbye were still to be played)."""
        with self.app.db.session() as session:
            call = self.find(session, provider, provider_call_id)
            if call is None:
                raise UnknownCall(f"no call {provider}/{provider_call_id}")
            now = self.app.clock.now()
            call.ended_at = now
            if call.answered_at:
                call.duration_s = (now - call.answered_at).total_seconds()

    def set_status(
        self,
        provider: str,
        provider_call_id: str,
        status: str,
        duration_s: float | None = None,
        *,
        note: str | None = None,
    ) -> None:
        """Telephony status (answered, completed, busy, no-answer, failed) for the call."""
        with self.app.db.session() as session:
            call = self.find(session, provider, provider_call_id)
            if call is None:
                raise UnknownCall(f"no call {provider}/{provider_call_id}")
            now = self.app.clock.now()
            if status == "answered":
                call.answered_at = call.answered_at or now
            else:
                if call.ended_at is None:
                    metrics.CALLS.labels(direction=call.direction, outcome=status).inc()
                call.status = final_status(call.status, status)
                call.ended_at = call.ended_at or now
                if duration_s is not None:
                    call.duration_s = duration_s
            session.add(
                CallEvent(
                    call=call,
                    at=now,
                    kind="note",
                    name="status",
                    data={"status": status, "duration_s": duration_s}
                    | ({"note": note} if note else {}),
                )
            )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
