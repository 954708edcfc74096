"""`ivr simulate`: run the inbound flow offline, storing everything a real call would."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ivr.calls.recordings import add_transcript, store_recording
from ivr.flow import (
    CallerHangup,
    Digits,
    Event,
    Gather,
    Record,
    RecordingFinished,
    Timeout,
    Verb,
)
from ivr.phones import PhoneNumberError, normalize_number, service_number
from ivr.store.models import Call, Ticket
from ivr.tickets import to_dict

if TYPE_CHECKING:
    from ivr.app import Hotline

KEYS = re.compile(r"^[0-9*#]*$")
log = logging.getLogger(__name__)


class SimulationError(ValueError):
    pass


@dataclass
class Simulation:
    call_id: int
    provider_call_id: str
    dialogue: list[Verb] = field(default_factory=list)
    ticket: dict[str, Any] | None = None


def check_inputs(app: Hotline, line: str, caller: str, digits: str) -> tuple[str, str]:
    """Validate everything before anything is stored."""
    if not KEYS.match(digits):
        raise SimulationError(f"--digits {digits!r}: only keypresses 0-9, * and # are allowed")
    try:
        number = service_number(line)
    except PhoneNumberError as exc:
        raise SimulationError(f"--line {line!r}: not a phone number") from exc
    if app.settings.line(number) is None:
        known = ", ".join(ln.number for ln in app.settings.lines)
        raise SimulationError(f"--line {line!r}: unknown line; configured lines: {known}")
    try:
        caller_n = normalize_number(caller)
    except PhoneNumberError as exc:
        raise SimulationError(f"--from {caller!r}: not a phone number") from exc
    return number, caller_n


def simulate_inbound(
    app: Hotline,
    *,
    line: str,
    caller: str,
    digits: str = "",
    text: str | None = None,
    audio: Path | None = None,
    hangup_during_recording: bool = False,
) -> Simulation:
    line_n, caller_n = check_inputs(app, line, caller, digits)
    if audio is not None and not audio.is_file():
        raise SimulationError(f"--audio {audio}: no such file")
    calls = app.calls
    sim_id = uuid.uuid4().hex
    step = calls.start(
        provider="sim", provider_call_id=sim_id, from_number=caller_n, to_number=line_n
    )
    sim = Simulation(step.call_id, sim_id, list(step.verbs))
    keys = list(digits)
    while not step.ended:
        waiting = step.verbs[-1] if step.verbs else None
        event: Event
        if isinstance(waiting, Gather):
            want = [keys.pop(0) for _ in range(min(waiting.num_digits, len(keys)))]
            event = Digits("".join(want)) if want else Timeout()
        elif isinstance(waiting, Record):
            ref = _record_statement(app, step.call_id, text, audio)
            reason = "hangup" if hangup_during_recording else "finish-key"
            event = RecordingFinished(ref, reason)
        else:
            event = CallerHangup()
        step = calls.handle("sim", sim_id, event)
        sim.dialogue.extend(step.verbs)
    with app.db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.call_id == step.call_id)).first()
        history = app.settings.duplicates.history_days
        sim.ticket = to_dict(ticket, history_days=history) if ticket else None
    return sim


def _record_statement(
    app: Hotline, call_id: int, text: str | None, audio: Path | None
) -> dict[str, Any]:
    with app.db.session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        rec_id = f"{call.provider_call_id}-statement"  # unique per provider, like a real one
        if audio is not None:
            rec = store_recording(
                app,
                session,
                call,
                rec_id,
                data=audio.read_bytes(),
                audio_format=audio.suffix.lstrip(".") or "wav",
            )
        else:
            rec = store_recording(app, session, call, rec_id, data=None, audio_format="text")
            statement = text or ""
            add_transcript(
                app,
                session,
                rec,
                text=statement,
                model="text-input",
            )
        ref = {"recording_id": rec.id}
    if audio is not None:
        _transcribe(app, rec.id)
    return ref


def _transcribe(app: Hotline, recording_id: int) -> None:
    """Transcribe now when a model is installed; otherwise the draft says pending."""
    from ivr.asr.models import ModelError, get_model
    from ivr.calls.transcription import transcribe_recording

    try:
        model = get_model(app.settings.asr, app.settings.base_dir)
    except ModelError as exc:
        log.warning("%s; the recording waits for `ivr transcribe --pending`", exc)
        return
    transcribe_recording(app, recording_id, model)
