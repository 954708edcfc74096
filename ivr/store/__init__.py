"""Storage: SQLAlchemy models, sessions and Alembic migrations."""

from ivr.store.db import Database, SchemaNotReady, upgrade
from ivr.store.models import (
    Base,
    Call,
    CallEvent,
    Campaign,
    DoNotCall,
    Recording,
    RecordingStatus,
    SurveyAttempt,
    Ticket,
    TicketStatus,
    Transcript,
)

__all__ = [
    "Base",
    "Call",
    "CallEvent",
    "Campaign",
    "Database",
    "DoNotCall",
    "Recording",
    "RecordingStatus",
    "SchemaNotReady",
    "SurveyAttempt",
    "Ticket",
    "TicketStatus",
    "Transcript",
    "upgrade",
]
