"""Reading a request: query parameters (400 with the reason) and JSON bodies (415/400/422)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from flask import request
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from werkzeug.datastructures import MultiDict

from ivr.config import Settings
from ivr.queries.tickets import SEARCH_MAX, TicketQuery
from ivr.store.models import TicketStatus
from webhooks.api.errors import ApiError
from webhooks.api.openapi import (
    ADDRESS_MAX,
    CURSOR,
    DEFAULT_LIMIT,
    INDICATOR_GROUPINGS,
    INDICATOR_PERIODS,
    MAX_LIMIT,
    NOTE_MAX,
    NUMBER_MAX,
    REPORT_DIMENSIONS,
    SUMMARY_MAX,
)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNT = re.compile(r"^[0-9]{1,6}$")


def _bad(name: str, why: str) -> ApiError:
    return ApiError(400, f"query parameter {name}: {why}", code="invalid_parameter")


def _only(args: MultiDict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise _bad(unknown[0], f"unknown; known are {', '.join(sorted(allowed))}")
    for name in args:
        if "\x00" in args[name]:
            raise _bad(name, "contains a NUL character")


def _choice(args: MultiDict[str, str], name: str, choices: list[str]) -> str | None:
    value = args.get(name)
    if value is not None and value not in choices:
        raise _bad(name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _day(args: MultiDict[str, str], name: str) -> date | None:
    value = args.get(name)
    if value is None:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _boolean(args: MultiDict[str, str], name: str) -> bool | None:
    value = args.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise _bad(name, "must be true or false")
    return value == "true"


def _limit(args: MultiDict[str, str]) -> int:
    value = args.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    if not _COUNT.match(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise _bad("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def encode_cursor(ticket_id: int) -> str:
    return str(ticket_id)


def _cursor(args: MultiDict[str, str]) -> int | None:
    value = args.get("cursor")
    if value is None:
        return None
    if not CURSOR.match(value):
        raise _bad("cursor", "not a cursor this API handed out")
    return int(value)


LIST_PARAMS = {
    "status",
    "line",
    "category",
    "department",
    "urgent",
    "q",
    "created_from",
    "created_to",
    "limit",
    "cursor",
}


def ticket_query(args: MultiDict[str, str], settings: Settings) -> tuple[TicketQuery, int]:
    """The filters and page size of GET /api/tickets."""
    _only(args, LIST_PARAMS)
    query = TicketQuery(
        status=_choice(args, "status", [s.value for s in TicketStatus]),
        line=_choice(args, "line", [ln.number for ln in settings.lines]),
        category=_choice(args, "category", [c.name for c in settings.categories]),
        department=_choice(args, "department", [d.name for d in settings.departments]),
        urgent=_boolean(args, "urgent"),
        created_from=_day(args, "created_from"),
        created_to=_day(args, "created_to"),
        before_id=_cursor(args),
        text=_search(args),
    )
    return query, _limit(args)


def _search(args: MultiDict[str, str]) -> str | None:
    value = args.get("q")
    if value is None:
        return None
    if len(value) > SEARCH_MAX:
        raise _bad("q", f"at most {SEARCH_MAX} characters")
    return value.strip() or None


def report_dimension(args: MultiDict[str, str]) -> str:
    _only(args, {"by"})
    return _choice(args, "by", REPORT_DIMENSIONS) or "department"


def indicator_query(args: MultiDict[str, str], today: date) -> tuple[date, date, str, str]:
    """from, to (default: the month so far), by and period of GET /api/reports/indicators."""
    _only(args, {"from", "to", "by", "period"})
    end = _day(args, "to") or today
    start = _day(args, "from") or end.replace(day=1)
    by = _choice(args, "by", INDICATOR_GROUPINGS) or "department"
    period = _choice(args, "period", INDICATOR_PERIODS) or "month"
    return start, end, by, period


def no_query(args: MultiDict[str, str]) -> None:
    _only(args, set())


# -- JSON bodies -------------------------------------------------------------


def _storable(value: str) -> str:
    """Text every database stores: no NUL characters, no lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text") from None
    return value


# Any text field (openapi.PLAIN_TEXT).
Text = Annotated[str, AfterValidator(_storable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TicketUpdate(_Body):
    """PATCH /api/tickets/{number}: only the fields given are changed."""

    category: Text = ""
    department: Text = ""
    address: Annotated[Text, Field(max_length=ADDRESS_MAX)] | None = None
    urgent: bool = False
    summary: Annotated[Text, Field(max_length=SUMMARY_MAX)] = ""
    out_of_scope: bool = False

    @field_validator("category", "department")
    @classmethod
    def _configured(cls, value: str, info: ValidationInfo) -> str:
        known: list[str] = (info.context or {}).get(info.field_name, [])
        if value not in known:
            raise ValueError(f"{value!r} is not one of the configured {info.field_name}s")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> TicketUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


# A person's explanation (openapi.SOME_TEXT): text that is not only spaces.
Explanation = Annotated[Text, Field(max_length=NOTE_MAX), AfterValidator(_not_blank)]


class Completion(_Body):
    """POST /api/tickets/{number}/complete."""

    note: Explanation


class Rejection(_Body):
    """POST /api/tickets/{number}/reject."""

    reason: Explanation


class Duplicate(_Body):
    """POST /api/tickets/{number}/duplicate."""

    of: Annotated[Text, Field(min_length=1, max_length=NUMBER_MAX)]


class Extension(_Body):
    """POST /api/tickets/{number}/extend."""

    workdays: Annotated[int, Field(ge=1, le=60)]
    reason: Explanation
    consent: bool


class Return(_Body):
    """POST /api/tickets/{number}/return."""

    reason: Explanation
    onsite: bool = False


class Redispatch(_Body):
    """POST /api/tickets/{number}/redispatch."""

    department: Annotated[Text, Field(min_length=1, max_length=64)]


class Review(_Body):
    """POST /api/tickets/{number}/review."""

    decision: Literal["confirm", "overrule"]
    reason: Explanation


class Supervise(_Body):
    """POST /api/tickets/{number}/supervise."""

    reason: Explanation


class Callback(_Body):
    """POST /api/tickets/{number}/callbacks."""

    score: Literal["satisfied", "basically_satisfied", "unsatisfied", "unreached"]
    resolved: Literal["resolved", "unresolved"] | None = None
    note: Annotated[Text, Field(max_length=NOTE_MAX)] = ""


def _contact_time(value: str) -> datetime:
    """An RFC 3339 date-time with its offset (2026-11-23T10:30:00+08:00)."""
    try:
        at = datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError("is not a date-time (2026-11-23T10:30:00+08:00)") from None
    if at.tzinfo is None:
        raise ValueError("give the time with its offset (+08:00 or Z)")
    return at


class Contact(_Body):
    """POST /api/tickets/{number}/contacts."""

    at: Annotated[Text, Field(max_length=40)] | None = None
    department: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    channel: Literal["phone", "visit", "sms", "other"] = "phone"
    note: Annotated[Text, Field(max_length=NOTE_MAX)] = ""

    @field_validator("at")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            _contact_time(value)
        return value

    def when(self) -> datetime | None:
        """The contact time (None: now)."""
        return _contact_time(self.at) if self.at is not None else None


class Answer(_Body):
    """POST /api/tickets/{number}/answer."""

    article: Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]


KB_QUERY_MAX = 500


def kb_query(args: MultiDict[str, str]) -> tuple[str, int]:
    """GET /api/kb: the question (q, required) and how many articles (limit, 1-20)."""
    _only(args, {"q", "limit"})
    question = args.get("q", "")
    if not question.strip():
        raise _bad("q", "the question is missing")
    if len(question) > KB_QUERY_MAX:
        raise _bad("q", f"at most {KB_QUERY_MAX} characters")
    value = args.get("limit", "3")
    if not _COUNT.match(value) or not 1 <= int(value) <= 20:
        raise _bad("limit", "must be a number from 1 to 20")
    return question, int(value)


M = TypeVar("M", bound=_Body)


def json_body() -> Any:
    if not request.is_json:
        raise ApiError(415, "send the body as application/json")
    try:
        return json.loads(request.get_data())
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None


def parse_body(model: type[M], context: dict[str, Any] | None = None) -> M:
    """The request's JSON body as `model`; 422 lists each field's problem."""
    try:
        return model.model_validate(json_body(), context=context)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise ApiError(422, "the body's fields are not acceptable", details=details) from None


def update_context(settings: Settings) -> dict[str, Any]:
    return {
        "category": [c.name for c in settings.categories],
        "department": [d.name for d in settings.departments],
    }
