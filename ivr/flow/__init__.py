"""The pure flow engine and its verb and event types."""

from ivr.flow.definition import Flow, FlowError, load_flow, parse_flow
from ivr.flow.engine import Action, CallState, Engine, Step, render, step
from ivr.flow.verbs import (
    CallerHangup,
    Digits,
    EmergencyHeard,
    Event,
    Gather,
    Hangup,
    Play,
    Record,
    RecordingFinished,
    Say,
    Start,
    Timeout,
    Transfer,
    Verb,
)

__all__ = [
    "Action",
    "CallState",
    "CallerHangup",
    "Digits",
    "EmergencyHeard",
    "Engine",
    "Event",
    "Flow",
    "FlowError",
    "Gather",
    "Hangup",
    "Play",
    "Record",
    "RecordingFinished",
    "Say",
    "Start",
    "Step",
    "Timeout",
    "Transfer",
    "Verb",
    "load_flow",
    "parse_flow",
    "render",
    "step",
]
