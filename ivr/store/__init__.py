"""Storage: SQLAlchemy models, sessions and Alembic migrations."""

from ivr.store import changes  # noqa: F401  (numbers every ticket write)
from ivr.store.db import Database, SchemaNotReady, upgrade
from ivr.store.models import (
    ApiToken,
    AuditEntry,
    Base,
    Call,
    CallEvent,
    Campaign,
    DoNotCall,
    Recording,
    RecordingStatus,
    Role,
    SurveyAttempt,
    Ticket,
    TicketStatus,
    Transcript,
    User,
)

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "Call",
    "CallEvent",
    "Campaign",
    "Database",
    "DoNotCall",
    "Recording",
    "RecordingStatus",
    "Role",
    "SchemaNotReady",
    "SurveyAttempt",
    "Ticket",
    "TicketStatus",
    "Transcript",
    "User",
    "upgrade",
]
