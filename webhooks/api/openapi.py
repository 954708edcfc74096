"""The OpenAPI 3 document of the JSON API, written as data.

`document(settings)` fills in what the hotline office configures (lines,
categories, departments) so that the document tells a client which values the
server accepts.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ivr import __version__
from ivr.config import Settings
from ivr.reports.indicators import GROUPINGS, PERIODS
from ivr.services.contacts import known_departments
from ivr.store.models import TicketStatus

JSON = "application/json"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
SUMMARY_MAX = 200
ADDRESS_MAX = 200
NOTE_MAX = 4000
NUMBER_MAX = 32
# A page's next cursor: where the next page continues (below this ticket position).
CURSOR = re.compile(r"^[0-9]{1,18}$")
# Text the databases store has no NUL characters; an explanation is not only spaces.
# "Spaces" are the characters Python's str.isspace() and str.strip() take for spaces
# (tests check the list), spelled out because regex engines disagree on \s.
SPACES = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
    r"\u202f\u205f\u3000"
)
PLAIN_TEXT = r"^[^\u0000]*$"
SOME_TEXT = rf"^[^\u0000]*[^\u0000{SPACES}][^\u0000]*$"
REPORT_DIMENSIONS = ["department", "line", "category", "week"]
INDICATOR_GROUPINGS = list(GROUPINGS)
INDICATOR_PERIODS = list(PERIODS)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(type_: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "nullable": True, **extra}


def _all_required(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object whose properties are all present (null where a value is missing)."""
    return {"type": "object", **extra, "required": list(properties), "properties": properties}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": _STR}

_ERROR_TEXT = {
    400: "Malformed request: unreadable JSON, a bad query parameter.",
    401: "No bearer token, or an unknown, revoked or deactivated one.",
    403: "The token's role may not do this.",
    404: "No such ticket, campaign or path.",
    405: "The path does not take this method.",
    409: "The ticket's or campaign's status does not allow this change.",
    412: "The ticket has changed since the copy named by If-Match; nothing was changed.",
    413: "The request body is too large.",
    415: "A request body that is not application/json.",
    422: "The JSON body is well-formed but its fields are not acceptable.",
    500: "An unexpected server error (logged).",
}

ADDRESS = _all_required(
    {
        "province": _nullable("string"),
        "city": _nullable("string"),
        "district": _nullable("string"),
        "street": _nullable("string"),
        "adcode": _nullable("string"),
        "text": _STR,
    },
    nullable=True,
    description="Where the matter is; parts are null when not known.",
)

INTAKE = _all_required(
    {
        "model_version": _nullable(
            "string", description="The intake model that drafted it; null: keyword rules only."
        ),
        "category_confidence": _nullable("number", description="Model probability, 0..1."),
        "department_confidence": _nullable("number", description="Model probability, 0..1."),
        "departments_top3": {
            "type": "array",
            "items": _all_required({"department": _STR, "probability": {"type": "number"}}),
        },
        "low_confidence": {
            **_STR_LIST,
            "description": "Fields below intake.low_confidence (category, department): check them.",
        },
    },
    description="What the intake model said about the draft.",
)

TICKET = _all_required(
    {
        "number": {"type": "string", "example": "12345-20261123-00001"},
        "status": {"type": "string", "enum": [s.value for s in TicketStatus]},
        "line": {"type": "string", "description": "The hotline the caller dialed."},
        "caller": {
            "type": "string",
            "description": "Caller number; masked (138****8000) unless the role may see it.",
        },
        "category": _STR,
        "category_source": {
            "type": "string",
            "description": "menu, override, text (model or hints), line_default or operator.",
        },
        "department": _STR,
        "department_source": _STR,
        "urgent": {"type": "boolean"},
        "urgency_keywords": _STR_LIST,
        "statement": {
            "type": "string",
            "description": "The caller's statement (transcript); phone numbers in it, written "
            "or spoken, masked like `caller` unless the role may see them.",
        },
        "statement_original": _nullable(
            "string", description="The statement as drafted, once an operator corrected it."
        ),
        "caller_name": _nullable("string", description="The caller's name, as noted."),
        "callback_number": _nullable(
            "string", description="Number to call back on; masked like `caller`."
        ),
        "summary": _STR,
        "address": ADDRESS,
        "phone_numbers": {
            **_STR_LIST,
            "description": "Numbers said in the statement, masked like `caller`.",
        },
        "out_of_scope": {"type": "boolean"},
        "scope": _all_required(
            {"kind": _STR, "rule": _nullable("string"), "advice": _nullable("string")},
            nullable=True,
        ),
        "intake": INTAKE,
        "interrupted": {
            "type": "boolean",
            "description": "The call was cut by a failure of the IVR; the draft was made "
            "from what was recorded until then (the statement may be incomplete).",
        },
        "contact_due": {"type": "string", "format": "date"},
        "due_date": {"type": "string", "format": "date"},
        "duplicate_of": _nullable("string", description="Number of the original ticket."),
        "transcription": _STR,
        "result_note": _nullable("string"),
        "kb_article": _nullable(
            "integer", description="The article a 咨询 was answered with (直接办结)."
        ),
        "survey_outcome": _nullable("string"),
        "unsatisfied_reasons": {
            **_STR_LIST,
            "description": "不满意原因: what the citizen said after answering 不满意 on a "
            "survey call (transcribed), newest first; numbers masked like `caller`.",
        },
        "survey_resolved": _nullable(
            "string", description="问题是否已解决: resolved or unresolved (second question)."
        ),
        "survey_round": {
            "type": "integer",
            "description": "1, then +1 each time a re-handled ticket is completed again.",
        },
        "rehandle_count": {"type": "integer", "description": "Times sent back (重办)."},
        "first_contact_at": _nullable(
            "string",
            format="date-time",
            description="When the department first contacted the caller (及时联系: by "
            "`contact_due`); null until a contact or a manual callback reached them.",
        ),
        "created_at": {"type": "string", "format": "date-time"},
        "completed_at": _nullable("string", format="date-time"),
        "earlier_tickets": {
            "type": "array",
            "description": "The caller's earlier tickets within duplicates.history_days "
            "(default 90), newest first.",
            "items": _all_required(
                {
                    "number": _STR,
                    "created_at": {"type": "string", "format": "date-time"},
                    "status": _STR,
                    "summary": _STR,
                }
            ),
        },
    }
)

TICKET_UPDATE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "description": "The fields to change; those left out stay as they are.",
    "properties": {
        "category": {"type": "string", "description": "One of the configured categories."},
        "department": {"type": "string", "description": "One of the configured departments."},
        "address": {
            "type": "string",
            "nullable": True,
            "maxLength": ADDRESS_MAX,
            "pattern": PLAIN_TEXT,
            "description": "The address as text (its parts are recognized); null clears it.",
        },
        "urgent": {"type": "boolean"},
        "summary": {"type": "string", "maxLength": SUMMARY_MAX, "pattern": PLAIN_TEXT},
        "out_of_scope": {"type": "boolean"},
    },
}


def _one_field(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name],
        "properties": {name: schema},
    }


def _explanation(description: str) -> dict[str, Any]:
    """Text for a person to read, not only spaces."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": NOTE_MAX,
        "pattern": SOME_TEXT,
        "description": description,
    }


COMPLETION = _one_field("note", _explanation("The result (办结说明)."))
REJECTION = _one_field("reason", _explanation("Why the hotline does not take it (不予受理)."))
DUPLICATE = _one_field(
    "of",
    {
        "type": "string",
        "minLength": 1,
        "maxLength": NUMBER_MAX,
        "pattern": PLAIN_TEXT,
        "description": "Number of the ticket this one repeats (or of one that repeats it).",
    },
)

EXTENSION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["workdays", "reason", "consent"],
    "properties": {
        "workdays": {
            "type": "integer",
            "minimum": 1,
            "maximum": 60,
            "description": "Working days added (at most lifecycle.extension_max_workdays).",
        },
        "reason": _explanation("Why (延期原因)."),
        "consent": {
            "type": "boolean",
            "enum": [True],
            "description": "The caller agreed (must be true).",
        },
    },
}
RETURN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {
        "reason": _explanation("Why the department is not responsible (退回原因)."),
        "onsite": {
            "type": "boolean",
            "description": "An on-site check was needed (the longer return window).",
        },
    },
}
REDISPATCH = _one_field(
    "department",
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": PLAIN_TEXT},
)
REVIEW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["decision", "reason"],
    "properties": {
        "decision": {
            "type": "string",
            "enum": ["confirm", "overrule"],
            "description": "confirm: 重办; overrule: the 不满意 was not well founded.",
        },
        "reason": _explanation("The review's finding (复核意见)."),
    },
}
SUPERVISE = _one_field("reason", _explanation("Why (督办原因)."))
CALLBACK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score"],
    "properties": {
        "score": {
            "type": "string",
            "enum": ["satisfied", "basically_satisfied", "unsatisfied", "unreached"],
        },
        "resolved": {"type": "string", "enum": ["resolved", "unresolved"], "nullable": True},
        "note": {"type": "string", "maxLength": NOTE_MAX, "pattern": PLAIN_TEXT},
    },
}
CONTACT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "at": {
            "type": "string",
            "format": "date-time",
            "maxLength": 40,
            "description": "When the caller was contacted, with its offset "
            "(2026-11-23T10:30:00+08:00); default now. Not in the future, not before the "
            "ticket was created.",
        },
        "department": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": PLAIN_TEXT,
            "description": "Who contacted the caller; default the ticket's department.",
        },
        "channel": {
            "type": "string",
            "enum": ["phone", "visit", "sms", "other"],
            "default": "phone",
        },
        "note": {"type": "string", "maxLength": NOTE_MAX, "pattern": PLAIN_TEXT},
    },
}
_LOOP_ITEM = {
    "number": _STR,
    "status": _STR,
    "department": _STR,
    "caller": {"type": "string", "description": "Masked unless the role may see it."},
}
SUPERVISION_LIST = _all_required(
    {
        "items": {
            "type": "array",
            "items": _all_required(
                {
                    **_LOOP_ITEM,
                    "due_date": {"type": "string", "format": "date"},
                    "source": {
                        "type": "string",
                        "enum": ["overdue", "repeat_address", "repeat_subject", "manual"],
                    },
                    "reason": _STR,
                    "since": {"type": "string", "format": "date-time"},
                    "by": _STR,
                }
            ),
        }
    }
)
CALLBACK_LIST = _all_required(
    {
        "items": {
            "type": "array",
            "items": _all_required(
                {
                    **_LOOP_ITEM,
                    "reasons": {
                        "type": "array",
                        "items": {
                            "type": "string",
                            "enum": ["unsatisfied", "failed", "supervised"],
                        },
                    },
                }
            ),
        }
    }
)

REPORT_ROW = _all_required(
    {
        "group": _STR,
        "tickets": {"type": "integer"},
        "attempts": {"type": "integer", "description": "Calls placed."},
        "satisfied": {"type": "integer", "description": "满意"},
        "basically_satisfied": {"type": "integer", "description": "基本满意"},
        "unsatisfied": {"type": "integer", "description": "不满意"},
        "no_response": {"type": "integer", "description": "未评价"},
        "responses": {"type": "integer"},
        "satisfaction_rate": _nullable(
            "number", description="满意率: (满意 + 基本满意) / responses."
        ),
        "response_rate": _nullable("number", description="responses / tickets."),
    }
)

CAMPAIGN = {
    "type": "object",
    "required": ["id", "name", "status", "filters", "created_at", "updated_at", "progress"],
    "properties": {
        "id": {"type": "integer"},
        "name": _STR,
        "status": _STR,
        "filters": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "progress": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "Attempts by status, and finished attempts as outcome:<outcome>.",
        },
    },
}

CAMPAIGN_DETAIL = {
    "allOf": [
        _ref("Campaign"),
        {
            "type": "object",
            "required": ["report", "unsatisfied_reasons"],
            "properties": {
                "unsatisfied_reasons": {
                    "type": "array",
                    "description": "不满意原因: what each citizen who answered 不满意 on this "
                    "campaign's calls said (transcribed; empty text while the recording waits "
                    "for transcription), newest first.",
                    "items": _all_required(
                        {
                            "ticket": {"type": "string", "description": "Ticket number."},
                            "at": {"type": "string", "format": "date-time"},
                            "text": _STR,
                        }
                    ),
                },
                "report": {
                    "type": "object",
                    "required": ["by", "rows", "total"],
                    "properties": {
                        "by": {"type": "string", "enum": REPORT_DIMENSIONS},
                        "rows": {"type": "array", "items": _ref("ReportRow")},
                        "total": _ref("ReportRow"),
                    },
                },
            },
        },
    ]
}

_RATE = _all_required(
    {
        "numerator": {"type": "integer", "minimum": 0},
        "denominator": {"type": "integer", "minimum": 0},
        "rate": _nullable("number", minimum=0, maximum=1, description="null: nothing to count"),
    }
)
INDICATOR_ROW = _all_required(
    {
        "group": _STR,
        "period": {"type": "string", "description": "2026-W48, 2026-11 or 2026-Q4."},
        "start": {"type": "string", "format": "date"},
        "end": {"type": "string", "format": "date"},
        "received": {"type": "integer", "description": "受理: accepted tickets received."},
        "completed": {"type": "integer", "description": "办结: tickets last completed."},
        "due": {"type": "integer", "description": "应办结: tickets due (after 延期)."},
        "satisfaction": {**_RATE, "description": "满意率"},
        "resolution": {**_RATE, "description": "解决率"},
        "on_time": {**_RATE, "description": "按期办结率"},
        "overdue": {**_RATE, "description": "超期率"},
        "rehandle": {**_RATE, "description": "重办率"},
        "contact": {**_RATE, "description": "及时联系率"},
        "direct": {**_RATE, "description": "直办率"},
    },
    description='One group in one period (README "Indicators (考核指标)" for definitions).',
)
INDICATOR_REPORT = _all_required(
    {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "by": {"type": "string", "enum": INDICATOR_GROUPINGS},
        "period": {"type": "string", "enum": INDICATOR_PERIODS},
        "rows": {"type": "array", "items": _ref("IndicatorRow")},
    }
)

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Machine-readable, e.g. unauthorized, invalid_parameter, "
                    "invalid_json, validation_failed, illegal_transition.",
                },
                "message": {"type": "string", "description": "For a person to read."},
                "details": {
                    "type": "array",
                    "description": "Per-field problems of a 422.",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": _STR, "message": _STR},
                    },
                },
            },
        }
    },
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


TICKET_NUMBER = {
    "name": "number",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Ticket number (12345-20261123-00001).",
}
CAMPAIGN_ID = {
    "name": "campaign_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}

LIST_PARAMS = [
    _query("status", {"type": "string", "enum": [s.value for s in TicketStatus]}, "Status."),
    _query("line", {"type": "string"}, "The hotline dialed (12345, 12315, ...)."),
    _query("category", {"type": "string"}, "Category."),
    _query("department", {"type": "string"}, "Department."),
    _query("urgent", {"type": "boolean"}, "Only urgent (true) or only normal (false) tickets."),
    _query(
        "q",
        {"type": "string", "maxLength": 100, "pattern": PLAIN_TEXT},
        "Search: a ticket number (or part of one), a whole phone number (the caller's or "
        "the call-back number), or words of the statement or summary.",
    ),
    _query(
        "created_from",
        {"type": "string", "format": "date"},
        "Created on or after this day (local time zone).",
    ),
    _query(
        "created_to",
        {"type": "string", "format": "date"},
        "Created on or before this day (local time zone).",
    ),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Page size.",
    ),
    _query(
        "cursor",
        {"type": "string", "pattern": CURSOR.pattern},
        "`next_cursor` of the previous page.",
    ),
]

TICKET_PAGE = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {
        "items": {"type": "array", "items": _ref("Ticket")},
        "next_cursor": _nullable(
            "string", description="Pass as `cursor` for the next page; null on the last page."
        ),
    },
}

_TICKET_OK = {
    **_json(_ref("Ticket"), "The ticket as it is now."),
    "headers": {
        "ETag": {
            "description": "The ticket's version (a change counter: the same for every role, "
            "nothing of the content can be derived from it); send it back as If-Match to "
            "change it safely.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The ETag of the copy the change is based on: if the ticket has changed "
    "since, nothing is changed and the answer is 412.",
}


def _change(operation_id: str, summary: str, body: str | None) -> dict[str, Any]:
    """An operation that changes one ticket, with a JSON body named `body` (if any)."""
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [IF_MATCH],
    }
    errors = [400, 401, 403, 404, 409, 412, 500]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
        errors += [413, 415, 422]
    op["responses"] = {"200": _TICKET_OK, **_errors(*sorted(errors))}
    return op


def _ticket_action(operation_id: str, summary: str, body: str | None) -> dict[str, Any]:
    """POST /api/tickets/{number}/<action>."""
    return {"parameters": [TICKET_NUMBER], "post": _change(operation_id, summary, body)}


def _campaign_action(operation_id: str, summary: str) -> dict[str, Any]:
    """POST /api/campaigns/{campaign_id}/<action>: a status change, no body."""
    return {
        "parameters": [CAMPAIGN_ID],
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "responses": {
                "200": _json(_ref("Campaign"), "The campaign as it is now."),
                **_errors(400, 401, 403, 404, 409, 500),
            },
        },
    }


ARTICLE = _all_required(
    {
        "id": {"type": "integer"},
        "title": _STR,
        "body": _STR,
        "department": {"type": "string", "description": "Empty: not one department's."},
        "keywords": _STR_LIST,
        "valid_from": _nullable("string", format="date"),
        "valid_to": _nullable("string", format="date"),
        "source": {"type": "string", "description": "The document the article comes from."},
        "updated_at": {"type": "string", "format": "date-time"},
    },
    description="A knowledge-base article (知识库): policy, notice, procedure or answer script.",
)
ARTICLE_HIT = {**ARTICLE, "required": [*ARTICLE["required"], "score"]}
ARTICLE_HIT["properties"] = {
    **ARTICLE["properties"],
    "score": {"type": "number", "description": "Relevance; higher is better."},
}
ANSWER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["article"],
    "properties": {
        "article": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2**31 - 1,
            "description": "The knowledge-base article that answers the consultation.",
        }
    },
}
ARTICLE_ID = {
    "name": "article_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}

PATHS: dict[str, Any] = {
    "/api/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document.",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document.")},
        }
    },
    "/api/tickets": {
        "get": {
            "operationId": "listTickets",
            "summary": "Tickets, newest first, one page at a time.",
            "parameters": LIST_PARAMS,
            "responses": {
                "200": _json(_ref("TicketPage"), "A page of tickets."),
                **_errors(400, 401, 403, 500),
            },
        }
    },
    "/api/tickets/{number}": {
        "parameters": [TICKET_NUMBER],
        "get": {
            "operationId": "getTicket",
            "summary": "One ticket.",
            "responses": {"200": _TICKET_OK, **_errors(400, 401, 403, 404, 500)},
        },
        "patch": _change(
            "updateTicket",
            "Correct a ticket's fields until it is completed; deadlines follow.",
            "TicketUpdate",
        ),
    },
    "/api/tickets/{number}/accept": _ticket_action(
        "acceptTicket", "Accept a draft: it becomes a registered ticket (受理).", None
    ),
    "/api/tickets/{number}/duplicate": _ticket_action(
        "markDuplicate",
        "Mark a draft as a duplicate (重复件) of another ticket; it is closed as `duplicate`.",
        "Duplicate",
    ),
    "/api/tickets/{number}/reject": _ticket_action(
        "rejectTicket",
        "Reject a draft or registered ticket as out of scope (不予受理), saying why.",
        "Rejection",
    ),
    "/api/tickets/{number}/complete": _ticket_action(
        "completeTicket",
        "Complete a registered or re-handled ticket (办结) with a result note. Supervisor.",
        "Completion",
    ),
    "/api/tickets/{number}/extend": _ticket_action(
        "extendTicket",
        "延期: move the due date by working days, before the deadline, with a reason and the "
        "caller's consent (lifecycle.max_extensions, extension_max_workdays).",
        "Extension",
    ),
    "/api/tickets/{number}/return": _ticket_action(
        "returnTicket",
        "退回: the department gives a dispatched ticket back within its window; after "
        "lifecycle.max_returns returns the district government takes it (属地兜底).",
        "Return",
    ),
    "/api/tickets/{number}/redispatch": _ticket_action(
        "redispatchTicket",
        "Send a returned ticket to another department (not one that returned it).",
        "Redispatch",
    ),
    "/api/tickets/{number}/review": _ticket_action(
        "reviewTicket",
        "复核 of a 不满意 (status review): confirm (重办) or overrule. Supervisor.",
        "Review",
    ),
    "/api/tickets/{number}/supervise": {
        "parameters": [TICKET_NUMBER],
        "post": {
            "operationId": "superviseTicket",
            "summary": "人工督办: put a ticket being handled under supervision. Supervisor.",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Supervise")}}},
            "responses": {
                "200": _json(
                    _all_required({"number": _STR, "supervised": {"type": "boolean"}}),
                    "The ticket is under supervision.",
                ),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422, 500),
            },
        },
    },
    "/api/tickets/{number}/contacts": _ticket_action(
        "recordContact",
        "及时联系: record that the department contacted the caller (a ticket past the draft, "
        "not rejected, duplicate or closed). The earliest contact is the ticket's "
        "first_contact_at, to compare with contact_due; every contact is kept. A time in "
        "the future or before the ticket was created is refused (409).",
        "Contact",
    ),
    "/api/tickets/{number}/callbacks": {
        "parameters": [TICKET_NUMBER],
        "post": {
            "operationId": "recordCallback",
            "summary": "人工回访: record what the caller said on a manual callback; it counts "
            "as a survey attempt of the ticket's current round.",
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Callback")}}},
            "responses": {
                "201": _json(
                    _all_required({"number": _STR, "attempt_id": {"type": "integer"}}),
                    "The callback was recorded.",
                ),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422, 500),
            },
        },
    },
    "/api/supervision": {
        "get": {
            "operationId": "listSupervision",
            "summary": "The 督办 list: tickets under supervision and why, oldest first.",
            "responses": {
                "200": _json(_ref("SupervisionList"), "Open supervisions."),
                **_errors(400, 401, 403, 500),
            },
        }
    },
    "/api/tickets/{number}/answer": _ticket_action(
        "answerTicket",
        "Answer a 咨询 ticket directly (直接办结) with a knowledge-base article valid today.",
        "Answer",
    ),
    "/api/kb": {
        "get": {
            "operationId": "searchKnowledgeBase",
            "summary": "Knowledge-base articles valid today that best answer a question.",
            "parameters": [
                {
                    **_query(
                        "q",
                        {"type": "string", "minLength": 1, "maxLength": 500, "pattern": SOME_TEXT},
                        "The question, in the caller's words.",
                    ),
                    "required": True,
                },
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 20, "default": 3},
                    "How many articles.",
                ),
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["items"],
                        "properties": {"items": {"type": "array", "items": _ref("ArticleHit")}},
                    },
                    "The best articles first (none: an empty list).",
                ),
                **_errors(400, 401, 403, 500),
            },
        }
    },
    "/api/callbacks": {
        "get": {
            "operationId": "listCallbacks",
            "summary": "Tickets to call back by hand: 不满意, failed automatic attempts, 督办.",
            "responses": {
                "200": _json(_ref("CallbackList"), "The manual callback list."),
                **_errors(400, 401, 403, 500),
            },
        }
    },
    "/api/kb/{article_id}": {
        "parameters": [ARTICLE_ID],
        "get": {
            "operationId": "getArticle",
            "summary": "One knowledge-base article (also an expired one).",
            "responses": {
                "200": _json(_ref("Article"), "The article."),
                **_errors(400, 401, 403, 404, 500),
            },
        },
    },
    "/api/campaigns": {
        "get": {
            "operationId": "listCampaigns",
            "summary": "Satisfaction callback campaigns (满意度回访), newest first.",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["items"],
                        "properties": {"items": {"type": "array", "items": _ref("Campaign")}},
                    },
                    "All campaigns with their progress.",
                ),
                **_errors(400, 401, 403, 500),
            },
        }
    },
    "/api/campaigns/{campaign_id}": {
        "parameters": [CAMPAIGN_ID],
        "get": {
            "operationId": "getCampaign",
            "summary": "A campaign's progress and results (满意率).",
            "parameters": [
                _query(
                    "by",
                    {"type": "string", "enum": REPORT_DIMENSIONS, "default": "department"},
                    "How the results are grouped.",
                ),
            ],
            "responses": {
                "200": _json(_ref("CampaignDetail"), "The campaign and its results."),
                **_errors(400, 401, 403, 404, 500),
            },
        },
    },
    "/api/reports/indicators": {
        "get": {
            "operationId": "getIndicators",
            "summary": "考核指标 (满意率, 解决率, 按期办结率, 超期率, 重办率, 及时联系率, 直办率) "
            "by group and period, local days of the hotline's time zone. Supervisor.",
            "parameters": [
                _query(
                    "from",
                    {"type": "string", "format": "date"},
                    "First day (default: the first of `to`'s month).",
                ),
                _query(
                    "to",
                    {"type": "string", "format": "date"},
                    "Last day, inclusive (default: today). `from` after `to`: no rows.",
                ),
                _query(
                    "by",
                    {"type": "string", "enum": INDICATOR_GROUPINGS, "default": "department"},
                    "How the tickets are grouped.",
                ),
                _query(
                    "period",
                    {"type": "string", "enum": INDICATOR_PERIODS, "default": "month"},
                    "ISO week, month or quarter.",
                ),
            ],
            "responses": {
                "200": _json(_ref("IndicatorReport"), "One row per group and period."),
                **_errors(400, 401, 403, 500),
            },
        }
    },
    "/api/campaigns/{campaign_id}/pause": _campaign_action(
        "pauseCampaign",
        "Stop claiming new calls (calls in progress finish): a created or running campaign "
        "becomes paused. Supervisor.",
    ),
    "/api/campaigns/{campaign_id}/resume": _campaign_action(
        "resumeCampaign",
        "Start a created campaign, or go on with a paused one: it becomes running. Supervisor.",
    ),
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "hotline-ivr ticket API",
        "version": __version__,
        "description": (
            "Draft tickets (工单草稿) prepared by the IVR, for the province/city ticket "
            "platform. Authenticate with `Authorization: Bearer <token>` (`ivr users token`). "
            "Operators may list, read, update and accept tickets, mark duplicates and reject "
            "out-of-scope requests; completing tickets and reading, pausing or resuming "
            "campaigns needs a supervisor (or admin); full phone numbers are shown to "
            "supervisors and admins only, masked (138****8000) for operators. Every view "
            "and change is written to the audit log as api:<token name>. Errors have one "
            "shape (Error) whose `code` a program can test."
        ),
    },
    "servers": [{"url": "/"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API token."}
        },
        "schemas": {
            "Ticket": TICKET,
            "TicketPage": TICKET_PAGE,
            "TicketUpdate": TICKET_UPDATE,
            "Completion": COMPLETION,
            "Rejection": REJECTION,
            "Duplicate": DUPLICATE,
            "Extension": EXTENSION,
            "Return": RETURN,
            "Redispatch": REDISPATCH,
            "Review": REVIEW,
            "Supervise": SUPERVISE,
            "Callback": CALLBACK,
            "Contact": CONTACT,
            "SupervisionList": SUPERVISION_LIST,
            "CallbackList": CALLBACK_LIST,
            "Campaign": CAMPAIGN,
            "CampaignDetail": CAMPAIGN_DETAIL,
            "ReportRow": REPORT_ROW,
            "IndicatorRow": INDICATOR_ROW,
            "IndicatorReport": INDICATOR_REPORT,
            "Error": ERROR,
            "Article": ARTICLE,
            "ArticleHit": ARTICLE_HIT,
            "Answer": ANSWER,
        },
        "responses": {
            f"E{status}": _json(_ref("Error"), text) for status, text in _ERROR_TEXT.items()
        },
    },
}


def document(settings: Settings) -> dict[str, Any]:
    """The document with the configured lines, categories and departments as enums."""
    doc = copy.deepcopy(DOCUMENT)
    enums = {
        "line": [ln.number for ln in settings.lines],
        "category": [c.name for c in settings.categories],
        "department": [d.name for d in settings.departments],
    }
    schemas = doc["components"]["schemas"]
    update = schemas["TicketUpdate"]["properties"]
    for field in ("category", "department"):
        update[field]["enum"] = enums[field]
    schemas["Redispatch"]["properties"]["department"]["enum"] = enums["department"]
    schemas["Contact"]["properties"]["department"]["enum"] = known_departments(settings)
    workdays = schemas["Extension"]["properties"]["workdays"]
    workdays["maximum"] = settings.lifecycle.extension_max_workdays
    for param in doc["paths"]["/api/tickets"]["get"]["parameters"]:
        if param["name"] in enums:
            param["schema"]["enum"] = enums[param["name"]]
    return doc
