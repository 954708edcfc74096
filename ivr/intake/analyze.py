"""A caller's statement -> the facts of a draft ticket (pure: no database, no I/O).

Every keyword list comes from config.yaml; this module only decides how they
are applied: the most matching keywords wins, ties go to what the caller said
first, and the line the caller dialed decides when nothing matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ivr.asr.normalize import extract_phone_numbers, normalize_transcript
from ivr.config import LineConfig, Settings
from ivr.intake.address import Address, extract_address
from ivr.phones import mask_number, mask_text

__all__ = ["Address", "Analysis", "ScopeFlag", "analyze", "summarize"]

SUMMARY_MAX = 60

CategorySource = Literal["menu", "text", "line_default"]
DepartmentSource = Literal["keywords", "line_default"]


@dataclass(frozen=True)
class ScopeFlag:
    rule: str
    kind: Literal["emergency", "out_of_scope"]
    advice: str
    matched: str


@dataclass(frozen=True)
class Analysis:
    text: str
    category: str
    category_source: CategorySource
    department: str
    department_source: DepartmentSource
    department_keywords: tuple[str, ...]
    urgent: bool
    urgency_keywords: tuple[str, ...]
    scope: ScopeFlag | None
    address: Address | None
    phone_numbers: tuple[str, ...]
    summary: str


def _find(text: str, keyword: str) -> int:
    """First position of the keyword, skipping places where it ends inside a doubled
    character: in 正在偷偷排污 the caller said 偷偷 (secretly), not 正在偷 (stealing now)."""
    pos = text.find(keyword)
    while pos >= 0:
        end = pos + len(keyword)
        if text[end : end + 1] != keyword[-1] or keyword[-2:-1] == keyword[-1]:
            return pos
        pos = text.find(keyword, pos + 1)
    return -1


def _hits(text: str, keywords: Iterable[str]) -> list[tuple[int, str]]:
    """(first position, keyword) for each distinct keyword in the text, in text order."""
    folded = text.casefold()
    found = []
    for keyword in dict.fromkeys(k for k in keywords if k):
        pos = _find(folded, keyword.casefold())
        if pos >= 0:
            found.append((pos, keyword))
    return sorted(found)


def _best(text: str, groups: Iterable[tuple[str, list[str]]]) -> tuple[str, list[str]] | None:
    """The group with the most distinct matching keywords; ties: the keyword heard first."""
    best: tuple[tuple[int, int, int], str, list[str]] | None = None
    for order, (name, keywords) in enumerate(groups):
        hits = _hits(text, keywords)
        if not hits:
            continue
        rank = (-len(hits), hits[0][0], order)
        if best is None or rank < best[0]:
            best = (rank, name, [k for _, k in hits])
    return (best[1], best[2]) if best else None


def _category(
    settings: Settings, text: str, line: LineConfig, menu_category: str | None
) -> tuple[str, CategorySource]:
    if menu_category and settings.category(menu_category):
        return menu_category, "menu"
    by_text = _best(text, ((c.name, c.keywords) for c in settings.categories))
    return (by_text[0], "text") if by_text else (line.default_category, "line_default")


def _department(
    settings: Settings, text: str, line: LineConfig
) -> tuple[str, DepartmentSource, tuple[str, ...]]:
    found = _best(text, ((d.name, d.keywords) for d in settings.departments))
    if found is None:
        return line.default_department, "line_default", ()
    return found[0], "keywords", tuple(found[1])


def _scope(settings: Settings, text: str) -> ScopeFlag | None:
    # Emergency rules first: "起诉" must not hide "着火" in the same statement.
    rules = sorted(settings.scope_rules, key=lambda r: r.kind != "emergency")
    for rule in rules:
        hits = _hits(text, rule.keywords)
        if hits:
            return ScopeFlag(rule.name, rule.kind, rule.advice, hits[0][1])
    return None


_FILLER = re.compile(
    r"^(?:(?:喂+|您好|你好|嗯+|啊+|呃+|额+|哎+|唉+|那个|就是说?|是这样的?)[，,。.！!？?、\s]*)+"
)
_CLAUSE_END = "。！？；，,.!?;"
# A local number said without its area code (extract_phone_numbers adds the code).
_LOCAL_NUMBER = re.compile(r"(?<!\d)\d{7,8}(?!\d)")


def summarize(text: str, phone_numbers: Iterable[str] = ()) -> str:
    """One line for the queue: fillers dropped, phone numbers masked, at most 60 characters."""
    line = " ".join(text.split())
    line = _FILLER.sub("", line) or line
    line = mask_text(line)
    landlines = [n for n in phone_numbers if n.startswith("0")]
    line = _LOCAL_NUMBER.sub(
        lambda m: (
            mask_number(m.group()) if any(n.endswith(m.group()) for n in landlines) else m.group()
        ),
        line,
    )
    if len(line) <= SUMMARY_MAX:
        return line
    cut = max(line.rfind(p, 0, SUMMARY_MAX) for p in _CLAUSE_END)
    if cut >= SUMMARY_MAX // 3:
        return line[:cut]
    return line[: SUMMARY_MAX - 1] + "…"


def analyze(
    settings: Settings, text: str, *, line: LineConfig, menu_category: str | None = None
) -> Analysis:
    """Category, department, urgency, scope, address and phone numbers of one statement."""
    text = normalize_transcript(text)
    category, category_source = _category(settings, text, line, menu_category)
    department, department_source, department_keywords = _department(settings, text, line)
    urgency_keywords = tuple(k for _, k in _hits(text, settings.urgency.keywords))
    phones = tuple(extract_phone_numbers(text, area_code=settings.city.area_code))
    return Analysis(
        text=text,
        category=category,
        category_source=category_source,
        department=department,
        department_source=department_source,
        department_keywords=department_keywords,
        urgent=bool(urgency_keywords),
        urgency_keywords=urgency_keywords,
        scope=_scope(settings, text),
        address=extract_address(text, settings.city) if text else None,
        phone_numbers=phones,
        summary=summarize(text, phones),
    )
