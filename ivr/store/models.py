"""SQLAlchemy 2.0 models. Timestamps are UTC; natural keys make every step idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class TicketStatus(StrEnum):
    DRAFT = "draft"
    REGISTERED = "registered"
    COMPLETED = "completed"
    SURVEYED = "surveyed"
    # 不满意: waits for a supervisor's review (重办 confirmed, or overruled).
    REVIEW = "review"
    REHANDLE = "rehandle"
    # 退回: a department returned it; back in the operators' queue for re-dispatch.
    RETURNED = "returned"
    CLOSED = "closed"
    REJECTED = "rejected"  # 不予受理: out of the hotline's scope
    DUPLICATE = "duplicate"  # 重复件: repeats an earlier ticket (duplicate_of)


class RecordingStatus(StrEnum):
    FETCHING = "fetching"  # known to the provider, its media not yet fetched (a job does)
    LOST = "fetch_failed"  # the media could not be fetched after every attempt
    STORED = "stored"
    PENDING = "transcription_pending"
    TRANSCRIBED = "transcribed"
    FAILED = "failed"


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("provider", "provider_call_id", name="uq_calls_provider"),
        Index("ix_calls_node_status", "node", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # sip | twilio | sim
    provider_call_id: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    flow: Mapped[str] = mapped_column(String(32))
    from_number: Mapped[str | None] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(32))
    line_number: Mapped[str] = mapped_column(String(16), index=True)
    original_number: Mapped[str | None] = mapped_column(String(32))
    line_source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="in-progress")
    flow_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    # The SIP node (host:port) that holds the call; its calls left open by a crash are
    # closed as interrupted when it starts again (ivr.calls.interrupted).
    node: Mapped[str | None] = mapped_column(String(128))

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call", order_by="CallEvent.id", cascade="all, delete-orphan"
    )
    recordings: Mapped[list[Recording]] = relationship(back_populates="call")


class CallEvent(Base):
    """Audit trail of a call: each event in and each verb out."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(8))  # event | verb | note
    name: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    call: Mapped[Call] = relationship(back_populates="events")


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("provider", "provider_recording_id", name="uq_recordings_provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_recording_id: Mapped[str] = mapped_column(String(128))
    path: Mapped[str | None] = mapped_column(String(512))
    audio_format: Mapped[str | None] = mapped_column(String(32))
    duration_s: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(24), default=RecordingStatus.STORED)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    call: Mapped[Call] = relationship(back_populates="recordings")
    transcript: Mapped[Transcript | None] = relationship(back_populates="recording")


class Transcript(Base):
    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    normalized_text: Mapped[str] = mapped_column(Text)
    words: Mapped[list[Any]] = mapped_column(default=list)
    confidence: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64))
    rtf: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]

    recording: Mapped[Recording] = relationship(back_populates="transcript")


class TicketSequence(Base):
    """Per-day counter behind human-readable ticket numbers."""

    __tablename__ = "ticket_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)  # YYYYMMDD local
    last: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    # One draft per call, whatever retries happen (natural key).
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.DRAFT, index=True)
    line_number: Mapped[str] = mapped_column(String(16), index=True)
    caller_number: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    category_source: Mapped[str] = mapped_column(String(16))
    department: Mapped[str] = mapped_column(String(64))
    department_source: Mapped[str] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(default=False)
    urgency_keywords: Mapped[list[Any]] = mapped_column(default=list)
    statement: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # City + street place of `address` (ivr.intake.duplicates.address_key): repeat calls.
    address_key: Mapped[str | None] = mapped_column(String(96))
    phone_numbers: Mapped[list[Any]] = mapped_column(default=list)
    out_of_scope: Mapped[bool] = mapped_column(default=False)
    scope_kind: Mapped[str | None] = mapped_column(String(16))
    scope_rule: Mapped[str | None] = mapped_column(String(64))
    scope_advice: Mapped[str | None] = mapped_column(Text)
    # What the intake model said: category_confidence, department_confidence,
    # departments_top3 [[name, p], ...], model_version, low_confidence [field, ...].
    intake: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    contact_due: Mapped[date]
    due_date: Mapped[date]
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    transcription: Mapped[str] = mapped_column(String(24), default="none")
    result_note: Mapped[str | None] = mapped_column(Text)
    survey_outcome: Mapped[str | None] = mapped_column(String(24))
    # The second survey question (问题是否已解决): resolved | unresolved.
    survey_resolved: Mapped[str | None] = mapped_column(String(16))
    # 1 at first; +1 each time a re-handled ticket is completed again (surveyed again).
    survey_round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    rehandle_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the current department received it (受理, re-dispatch): the return window's start.
    dispatched_at: Mapped[datetime | None]
    # The earliest contact with the caller about it: a department's recorded contact
    # (ticket_contacts, ivr.services.contacts) or a manual callback that reached them.
    first_contact_at: Mapped[datetime | None]
    # The caller asked not to be called back (no satisfaction survey).
    no_callback: Mapped[bool] = mapped_column(default=False, server_default=false())
    # 直接办结: a consultation answered on the spot with this knowledge-base article.
    kb_article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # Set from `ChangeCounter` by every write (ivr.store.changes): the live queue's
    # cursor and the ticket's version.
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", index=True)
    # Who the caller says they are and where to reach them, as the operator notes them.
    caller_name: Mapped[str | None] = mapped_column(String(64))
    callback_number: Mapped[str | None] = mapped_column(String(32))
    # The statement as first drafted, kept when an operator corrects it.
    statement_original: Mapped[str | None] = mapped_column(Text)
    # 认领: the console user working the draft, until claimed_at + console.claim_minutes.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]

    duplicate_of: Mapped[Ticket | None] = relationship(remote_side="Ticket.id")
    call: Mapped[Call | None] = relationship()

    __table_args__ = (
        Index("ix_tickets_caller_created", "caller_number", "created_at"),
        Index("ix_tickets_address_key_created", "address_key", "created_at"),
        # The work queue's order: urgent first, then the nearest due date.
        Index("ix_tickets_status_urgent_due", "status", "urgent", "due_date"),
    )


class ChangeCounter(Base):
    """The one row whose `seq` numbers ticket changes in commit order (ivr.store.changes)."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="created")
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The runner holding the campaign (host:pid:nonce) and its last sign of life.
    runner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SurveyAttempt(Base):
    __tablename__ = "survey_attempts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "ticket_id", "attempt_no", name="uq_survey_attempts_key"),
        # "One survey call per number per day" is asked before every claim.
        Index("ix_survey_attempts_phone_claimed_at", "phone", "claimed_at"),
        # The next due attempts of a campaign, in claim order, without reading the rest.
        Index("ix_survey_attempts_due", "campaign_id", "status", "not_before", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for a manual callback (a person called and recorded the answer).
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    outcome: Mapped[str | None] = mapped_column(String(24))
    score: Mapped[str | None] = mapped_column(String(24))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    # Not to be dialed before this time (retry spacing, next calling window).
    not_before: Mapped[datetime | None] = mapped_column(index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The ticket's survey_round the attempt belongs to (a re-handled ticket is surveyed again).
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The second question's answer: resolved | unresolved.
    resolved: Mapped[str | None] = mapped_column(String(16))
    manual: Mapped[bool] = mapped_column(default=False, server_default=false())
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(128))


class TicketExtension(Base):
    """延期: one granted extension of a ticket's due date."""

    __tablename__ = "ticket_extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    workdays: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    old_due: Mapped[date]
    new_due: Mapped[date]
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


class TicketReturn(Base):
    """退回: a department gave a ticket back (counted per department)."""

    __tablename__ = "ticket_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text)
    onsite: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]


class TicketContact(Base):
    """及时联系: the department contacted the caller (the ticket's first_contact_at is the
    earliest one; every contact is kept)."""

    __tablename__ = "ticket_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]  # when the caller was contacted
    department: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # phone | visit | sms | other
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime]


class Supervision(Base):
    """督办: a ticket under supervision, why (overdue, repeat_address, repeat_subject,
    manual) and until when (closed when the ticket is completed)."""

    __tablename__ = "supervisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(index=True)


class DoNotCall(Base):
    """Numbers that opted out of callbacks."""

    __tablename__ = "do_not_call"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime]


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class User(Base):
    """A console or API account (话务员, supervisor, admin)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default=Role.OPERATOR)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    # Bumped by sign-out, a password, role or active change: older console sessions end.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginFailure(Base):
    """A counted failed console sign-in (ivr.services.accounts.sign_in): the lockouts
    per client address and per account are counted from these rows."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)


class AuditEntry(Base):
    """Who viewed or changed what, and when (actor: username, "api:<token>" or "system")."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    ticket: Mapped[Ticket | None] = relationship()


class KbArticle(Base):
    """A knowledge-base article (知识库): a policy, notice, procedure or answer script.

    `terms` is the article cut into search words (ivr.kb.terms), space-separated: the
    text the full-text index (SQLite FTS5 table `kb_fts`, PostgreSQL GIN index on
    to_tsvector('simple', terms)) is built over.
    """

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    department: Mapped[str] = mapped_column(String(64), default="")
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]
    source: Mapped[str] = mapped_column(String(300), default="")
    terms: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("title", "department"),)


class KbTerm(Base):
    """How many knowledge-base articles hold a search word (its document frequency).

    Kept in step with `KbArticle.terms` by the knowledge-base service; search reads it
    to match on a question's rarer words (ivr.queries.kb).
    """

    __tablename__ = "kb_terms"

    term: Mapped[str] = mapped_column(Text, primary_key=True)
    articles: Mapped[int]
