"""Twilio's webhook parameters, checked: a bad one is a 400 that names it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from werkzeug.datastructures import MultiDict

from ivr.transports.twilio.context import BadContext, OutboundContext
from ivr.transports.twilio.steps import CALL_STATUSES

_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
_DIGITS = re.compile(r"^[0-9*#]{0,32}$")
_SEQ = re.compile(r"^\d{1,4}$")
RECORDING_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})
ANSWERED_BY = frozenset(
    {
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    }
)
MAX_VALUE = 512


class BadParams(ValueError):
    pass


Form = MultiDict[str, str] | Mapping[str, str]


def sid(form: Form, name: str, prefix: str) -> str:
    value = form.get(name)
    if not value:
        raise BadParams(f"{name} is missing")
    if not _SID.match(value) or not value.startswith(prefix):
        raise BadParams(f"{name} {value[:40]!r} is not a Twilio {prefix} SID")
    return value


def text(form: Form, name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_VALUE:
        raise BadParams(f"{name} is longer than {MAX_VALUE} characters")
    return value


def values(form: MultiDict[str, str], *names: str) -> list[str]:
    out: list[str] = []
    for name in names:
        for value in form.getlist(name):
            if len(value) > 4 * MAX_VALUE:
                raise BadParams(f"{name} is too long")
            if value:
                out.append(value)
    return out


def digits(form: Form, *, allow_hangup: bool = False) -> str:
    value = form.get("Digits") or ""
    if allow_hangup and value == "hangup":
        return value
    if not _DIGITS.match(value):
        raise BadParams(f"Digits {value[:40]!r} are not keypresses (0-9, * and #)")
    return value


def seq(args: Form) -> int:
    value = args.get("seq") or ""
    if not _SEQ.match(value):
        raise BadParams(f"seq {value[:20]!r} is not a step number")
    return int(value)


def poll(args: Form) -> int:
    value = args.get("poll") or ""
    if not _SEQ.match(value):
        raise BadParams(f"poll {value[:20]!r} is not a poll number")
    return int(value)


def recording_end(args: Form) -> str:
    """How a recording that the caller is held after ended (carried in the poll URL)."""
    value = args.get("end") or "silence"
    if value not in ("finish-key", "silence"):
        raise BadParams(f"end {value[:20]!r} is not how a recording ended")
    return value


def seconds(form: Form, name: str) -> float | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadParams(f"{name} {value[:20]!r} is not a number of seconds") from None
    if not 0 <= number < 10**6:
        raise BadParams(f"{name} {value[:20]!r} is out of range")
    return number


def call_status(form: Form) -> str:
    value = form.get("CallStatus") or ""
    if value not in CALL_STATUSES:
        raise BadParams(f"CallStatus {value[:30]!r} is not a Twilio call status")
    return value


def recording_status(form: Form) -> str:
    value = form.get("RecordingStatus") or "completed"
    if value not in RECORDING_STATUSES:
        raise BadParams(f"RecordingStatus {value[:30]!r} is not a Twilio recording status")
    return value


DIAL_STATUSES = frozenset({"completed", "answered", "busy", "no-answer", "failed", "canceled"})


def dial_status(form: Form) -> str:
    value = form.get("DialCallStatus") or ""
    if value not in DIAL_STATUSES:
        raise BadParams(f"DialCallStatus {value[:30]!r} is not how a <Dial> ends")
    return value


def answered_by(form: Form) -> str | None:
    value = form.get("AnsweredBy") or None
    if value is not None and value not in ANSWERED_BY:
        raise BadParams(f"AnsweredBy {value[:30]!r} is not an answering-machine detection result")
    return value


def context(args: Form, *, required: bool) -> OutboundContext | None:
    token = args.get("ctx")
    if not token:
        if required:
            raise BadParams("ctx is missing")
        return None
    try:
        return OutboundContext.decode(token)
    except BadContext as exc:
        raise BadParams(str(exc)) from None
