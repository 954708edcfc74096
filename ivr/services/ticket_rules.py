"""The review rules, as pure changes of one loaded ticket; `ivr.services.tickets` calls them
inside its unit of work. Each returns what it changed, field by field:
{"status": {"old": "draft", "new": "registered"}} (JSON values only, for the audit log)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ivr.services.unit import IllegalTransition, Invalid
from ivr.store.models import KbArticle, Ticket, TicketStatus
from ivr.tickets import transition

if TYPE_CHECKING:
    from ivr.app import Hotline

S = TicketStatus
Changes = dict[str, dict[str, Any]]
EDITABLE_FIELDS = (
    "category",
    "department",
    "address",
    "urgent",
    "summary",
    "out_of_scope",
    "statement",
    "caller_name",
    "callback_number",
)
# A ticket's fields may be corrected until it is completed.
EDITABLE_STATUSES = frozenset({S.DRAFT, S.REGISTERED, S.RETURNED, S.REHANDLE})
SUMMARY_MAX = 200
STATEMENT_MAX = 4000
NAME_MAX = 64
# A call-back number as people write it: digits, maybe a leading + and dashes or spaces.
CALLBACK = re.compile(r"\+?[0-9][0-9 -]{4,30}")


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def required(text: str, message: str, zh: str | None = None) -> str:
    text = text.strip()
    if not text:
        raise Invalid(message, zh=zh)
    return text


def set_field(ticket: Ticket, name: str, value: Any, changes: Changes) -> None:
    old = getattr(ticket, name)
    if old != value:
        changes[name] = {"old": _json(old), "new": _json(value)}
        setattr(ticket, name, value)


def move(ticket: Ticket, new: TicketStatus, at: datetime, changes: Changes) -> None:
    old = changes["status"]["old"] if "status" in changes else str(ticket.status)
    transition(ticket, new, at)
    changes["status"] = {"old": old, "new": new.value}


def accept(ticket: Ticket, at: datetime) -> Changes:
    """受理: the operator accepts a draft; it becomes a registered ticket.

    A draft still marked out of scope (an emergency for 110/119, a court matter...)
    is not accepted: the mark is cleared by editing, or the draft is rejected.
    """
    if ticket.status != S.DRAFT:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status}, not a draft",
            zh=f"工单 {ticket.number} 已不是草稿，不能受理",
        )
    if ticket.out_of_scope:
        raise IllegalTransition(
            f"ticket {ticket.number} is marked out of scope: clear the mark or reject it",
            zh=f"工单 {ticket.number} 标记为非受理范围：请先取消该标记，或作不予受理处理",
        )
    changes: Changes = {}
    if ticket.duplicate_of is not None:  # accepted as a ticket of its own: not a duplicate
        changes["duplicate_of"] = {"old": ticket.duplicate_of.number, "new": None}
        ticket.duplicate_of = None
    move(ticket, S.REGISTERED, at, changes)
    return changes


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text", field=name)
    return value.strip()


def _flag(fields: Mapping[str, Any], name: str) -> bool:
    value = fields[name]
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false", field=name)
    return value


def _address(app: Hotline, text: str) -> dict[str, Any] | None:
    from ivr.intake.address import extract_address

    if not text:
        return None
    found = extract_address(text, app.settings.city)
    return {
        "province": found.province if found else None,
        "city": found.city if found else None,
        "district": found.district if found else None,
        "street": found.street if found else None,
        "adcode": found.adcode if found else None,
        "text": text,
    }


def _edited_values(app: Hotline, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The checked new values of the fields other than the address."""
    settings = app.settings
    values: dict[str, Any] = {}
    if "category" in fields:
        values["category"] = _text(fields, "category")
        if settings.category(values["category"]) is None:
            raise Invalid(
                f"unknown category {values['category']!r}", zh="没有这个类别", field="category"
            )
    if "department" in fields:
        values["department"] = _text(fields, "department")
        if values["department"] not in {d.name for d in settings.departments}:
            raise Invalid(
                f"unknown department {values['department']!r}",
                zh="没有这个承办部门",
                field="department",
            )
    if "summary" in fields:
        values["summary"] = _text(fields, "summary")
        if len(values["summary"]) > SUMMARY_MAX:
            raise Invalid(
                f"summary is longer than {SUMMARY_MAX} characters",
                zh=f"摘要不能超过 {SUMMARY_MAX} 字",
                field="summary",
            )
    for flag in ("urgent", "out_of_scope"):
        if flag in fields:
            values[flag] = _flag(fields, flag)
    if "caller_name" in fields:
        values["caller_name"] = _text(fields, "caller_name") or None
        if values["caller_name"] and len(values["caller_name"]) > NAME_MAX:
            raise Invalid(
                f"caller name is longer than {NAME_MAX} characters",
                zh=f"来电人姓名不能超过 {NAME_MAX} 字",
                field="caller_name",
            )
    if "callback_number" in fields:
        number = _text(fields, "callback_number")
        if number and not CALLBACK.fullmatch(number):
            raise Invalid(
                f"{number!r} is not a phone number",
                zh="回电号码只能是数字",
                field="callback_number",
            )
        values["callback_number"] = re.sub(r"[ -]", "", number) or None
    if "statement" in fields:
        values["statement"] = _text(fields, "statement")
        if not values["statement"] or len(values["statement"]) > STATEMENT_MAX:
            raise Invalid(
                f"the statement must be 1 to {STATEMENT_MAX} characters",
                zh=f"来电诉求不能为空，也不能超过 {STATEMENT_MAX} 字",
                field="statement",
            )
    return values


def update(app: Hotline, ticket: Ticket, fields: Mapping[str, Any], at: datetime) -> Changes:
    """Correct a ticket's fields (any of EDITABLE_FIELDS); deadlines follow category and urgency.

    A corrected statement keeps the drafted one in `statement_original` (the audit row
    has every correction); `callback_number` is stored as digits.

    `address` is the address as text (empty clears it); `urgent` and `out_of_scope`
    are booleans. Unknown fields, categories or departments are refused, nothing is
    changed then. Returns only what actually changed.
    """
    from ivr.intake.drafts import deadlines

    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise Invalid(f"not editable: {', '.join(unknown)}")
    if ticket.status not in EDITABLE_STATUSES:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status}; it can no longer be edited",
            zh=f"工单 {ticket.number} 已结束办理，不能再修改",
        )
    values = _edited_values(app, fields)
    changes: Changes = {}
    if "address" in fields:
        text = _text(fields, "address")
        old_text = (ticket.address or {}).get("text") or ""
        if text != old_text:
            changes["address"] = {"old": old_text or None, "new": text or None}
            ticket.address = _address(app, text)
    drafted = ticket.statement
    for name, value in values.items():
        set_field(ticket, name, value, changes)
    if "statement" in changes and ticket.statement_original is None:
        ticket.statement_original = drafted  # the caller's words as first drafted
    if "category" in changes:
        ticket.category_source = "operator"
    if "department" in changes:
        ticket.department_source = "operator"
    if "out_of_scope" in changes and not ticket.out_of_scope:
        ticket.scope_kind = ticket.scope_rule = ticket.scope_advice = None
    if "category" in changes or "urgent" in changes:
        day = ticket.created_at.astimezone(app.settings.tz).date()
        contact_due, due_date = deadlines(app, day, ticket.category, ticket.urgent)
        set_field(ticket, "contact_due", contact_due, changes)
        set_field(ticket, "due_date", due_date, changes)
    if changes:
        ticket.updated_at = at
    return changes


def mark_duplicate(ticket: Ticket, original: Ticket, at: datetime) -> Changes:
    """重复件: the draft repeats `original` (or the ticket that one repeats) and is closed
    as a duplicate (a status of its own, not 不予受理)."""
    while original.duplicate_of is not None:
        original = original.duplicate_of
    if original.id == ticket.id:
        raise IllegalTransition(
            f"ticket {ticket.number} cannot duplicate itself", zh="工单不能重复于它自己"
        )
    if original.status == S.REJECTED:
        raise IllegalTransition(
            f"ticket {original.number} was rejected; it cannot be the original",
            zh=f"工单 {original.number} 未予受理，不能作为原工单",
        )
    if ticket.status != S.DRAFT:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status}, not a draft",
            zh=f"工单 {ticket.number} 已不是草稿，不能标记为重复件",
        )
    changes: Changes = {}
    old = ticket.duplicate_of.number if ticket.duplicate_of else None
    if old != original.number:
        changes["duplicate_of"] = {"old": old, "new": original.number}
    ticket.duplicate_of = original
    move(ticket, S.DUPLICATE, at, changes)
    return changes


def reject_out_of_scope(ticket: Ticket, reason: str, at: datetime) -> Changes:
    """不予受理: the request is not for the hotline (courts, 110/119...); `reason` tells why."""
    reason = required(reason, "give the reason the request is out of scope", "请填写不予受理原因")
    if ticket.status not in (S.DRAFT, S.REGISTERED):
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.status}; it cannot be rejected",
            zh=f"工单 {ticket.number} 当前状态不能作不予受理处理",
        )
    changes: Changes = {}
    set_field(ticket, "out_of_scope", True, changes)
    set_field(ticket, "scope_kind", ticket.scope_kind or "out_of_scope", changes)
    set_field(ticket, "result_note", reason, changes)
    move(ticket, S.REJECTED, at, changes)
    return changes


def complete(ticket: Ticket, note: str, at: datetime) -> Changes:
    """办结: a registered (or re-handled) ticket is completed with a result note.

    A draft may be completed at once (即时办结, a question answered on the call):
    it is accepted first, by `accept`'s rules, so what `accept` refuses (a draft
    marked out of scope) is refused here too.

    A re-handled ticket completed again starts a new survey round: its outcome of
    the last round is kept on that round's attempts and cleared here, so the next
    campaign surveys it again.
    """
    note = required(note, "a completed ticket needs a result note", "办结需要填写办结说明")
    changes = accept(ticket, at) if ticket.status == S.DRAFT else {}
    rehandled = ticket.status == S.REHANDLE
    move(ticket, S.COMPLETED, at, changes)
    set_field(ticket, "result_note", note, changes)
    if rehandled:
        set_field(ticket, "survey_outcome", None, changes)
        set_field(ticket, "survey_resolved", None, changes)
        set_field(ticket, "survey_round", ticket.survey_round + 1, changes)
    return changes


CONSULTATION = "咨询"


def answer_directly(ticket: Ticket, article: KbArticle, day: date, at: datetime) -> Changes:
    """直接办结: a consultation answered on the spot with a knowledge-base article.

    Only a 咨询 ticket, only with an article valid on `day` (an expired policy is
    no answer); completed by `complete`'s rules, the article's id kept for 直办率.
    """
    if ticket.category != CONSULTATION:
        raise IllegalTransition(
            f"ticket {ticket.number} is {ticket.category}: only a {CONSULTATION} ticket "
            "is answered directly from the knowledge base"
        )
    if (article.valid_from and article.valid_from > day) or (
        article.valid_to and article.valid_to < day
    ):
        raise Invalid(f"article {article.id} is not valid on {day.isoformat()}")
    changes = complete(ticket, f"直接答复（知识库）：{article.title}", at)
    set_field(ticket, "kb_article_id", article.id, changes)
    return changes


def reopen(ticket: Ticket, at: datetime) -> Changes:
    """重办: a completed ticket goes back to the department (the caller was not satisfied).

    Only completed tickets, and 不满意 ones under review, reopen (TRANSITIONS): a surveyed
    or closed ticket is final, and a rejected request comes back as a new call.
    """
    changes: Changes = {}
    move(ticket, S.REHANDLE, at, changes)
    set_field(ticket, "rehandle_count", ticket.rehandle_count + 1, changes)
    return changes


def survey_outcome(
    ticket: Ticket, score: str, at: datetime, resolved: str | None = None
) -> Changes:
    """A survey answer: the score (and whether the problem was solved) is kept; a completed
    ticket becomes surveyed, or waits for a supervisor's review (待复核) when the caller was
    unsatisfied: it is re-handled only if the review finds the complaint well founded."""
    changes: Changes = {}
    set_field(ticket, "survey_outcome", score, changes)
    if resolved is not None:
        set_field(ticket, "survey_resolved", resolved, changes)
    if ticket.status == S.COMPLETED:
        move(ticket, S.REVIEW if score == "unsatisfied" else S.SURVEYED, at, changes)
    return changes


REVIEW_DECISIONS = ("confirm", "overrule")


def review(ticket: Ticket, decision: str, at: datetime) -> Changes:
    """复核 of a 不满意: `confirm` sends the ticket back for re-handling (重办); `overrule`
    (the complaint was not well founded) closes the round as surveyed, 不满意 kept."""
    if decision not in REVIEW_DECISIONS:
        raise Invalid(f"decision must be one of {', '.join(REVIEW_DECISIONS)}", field="decision")
    if ticket.status != S.REVIEW:
        raise IllegalTransition(f"ticket {ticket.number} is {ticket.status}; nothing to review")
    if decision == "confirm":
        return reopen(ticket, at)
    changes: Changes = {}
    move(ticket, S.SURVEYED, at, changes)
    return changes
