"""What the engine asks a transport to do, and what a transport reports back.

Transports translate verbs to media (pyVoIP audio, TwiML) and telephony to
events; nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# ---- verbs -----------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    """Speak a prompt: `prompt` names the prompt (its audio clip), `text` is rendered."""

    prompt: str
    text: str


@dataclass(frozen=True)
class Play:
    url: str


@dataclass(frozen=True)
class Gather:
    """Collect keypresses while (interruptibly) speaking `prompts`."""

    num_digits: int
    timeout_s: float
    finish_on_key: str | None
    prompts: tuple[Say, ...] = ()


@dataclass(frozen=True)
class Record:
    max_length_s: int
    silence_end_s: float
    finish_on_key: str | None
    beep: bool = True


@dataclass(frozen=True)
class Transfer:
    target: str


@dataclass(frozen=True)
class Hangup:
    reason: str = "flow-complete"


Verb = Say | Play | Gather | Record | Transfer | Hangup

# ---- events ------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Digits:
    digits: str


@dataclass(frozen=True)
class Timeout:
    pass


RecordingEnd = Literal["finish-key", "silence", "max-length", "hangup", "timeout", "emergency"]


@dataclass(frozen=True)
class RecordingFinished:
    """The statement was recorded; `recording` is the transport's reference to it."""

    recording: dict[str, Any] | None = None
    reason: RecordingEnd = "finish-key"


@dataclass(frozen=True)
class EmergencyHeard:
    """The live recognizer heard an emergency while the caller spoke; recording stopped.

    `rule` and `advice` are the matching scope rule's; `text` is what was heard.
    """

    rule: str
    advice: str
    text: str = ""
    recording: dict[str, Any] | None = None


@dataclass(frozen=True)
class CallerHangup:
    pass


Event = Start | Digits | Timeout | RecordingFinished | EmergencyHeard | CallerHangup


def verb_to_dict(verb: Verb) -> dict[str, Any]:
    """A JSON-friendly record of a verb, for the call's audit trail."""
    return {"verb": type(verb).__name__.lower(), **asdict(verb)}


def event_to_dict(event: Event) -> dict[str, Any]:
    return {"event": type(event).__name__.lower(), **asdict(event)}


_VERBS: dict[str, type] = {
    "say": Say,
    "play": Play,
    "gather": Gather,
    "record": Record,
    "transfer": Transfer,
    "hangup": Hangup,
}


def verb_from_dict(data: dict[str, Any]) -> Verb:
    """Inverse of verb_to_dict (to replay the answer to a retried request)."""
    fields = {k: v for k, v in data.items() if k != "verb"}
    kind = _VERBS[data["verb"]]
    if kind is Gather:
        fields["prompts"] = tuple(Say(**p) for p in fields.get("prompts", ()))
    verb: Verb = kind(**fields)
    return verb
