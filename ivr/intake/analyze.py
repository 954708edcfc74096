"""A caller's statement -> the facts of a draft ticket (pure: no database, no I/O).

The intake model proposes category and department with probabilities; config.yaml
decides what wins over it: the menu choice, intake.routing_overrides (always),
the category/department keyword hints (only where the model is not confident:
the most matching keywords win, ties go to what the caller said first) and the
line the caller dialed when nothing else decides. Scope and urgency are rules
(ivr.intake.rules: synonyms, negation, place words); emergencies are urgent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ivr.asr.normalize import extract_phone_numbers, normalize_transcript
from ivr.config import LineConfig, Settings
from ivr.intake.address import Address, extract_address
from ivr.intake.rules import Matcher, matcher
from ivr.phones import mask_number, mask_text

if TYPE_CHECKING:
    from ivr.intake.model import IntakeModel, Prediction

__all__ = ["Address", "Analysis", "ScopeFlag", "analyze", "summarize"]

SUMMARY_MAX = 60

# "text": decided from the statement, by the model or the keyword hints (the draft's
# intake facts say which: a model decision has its category_confidence).
CategorySource = Literal["menu", "override", "text", "line_default"]
DepartmentSource = Literal["override", "model", "keywords", "line_default"]


@dataclass(frozen=True)
class ScopeFlag:
    rule: str
    kind: Literal["emergency", "out_of_scope"]
    advice: str
    # The keyword heard; "" when the model flagged an emergency no keyword caught.
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
    # What the model said (None without a model): probability of the chosen
    # value, the three likeliest departments, the model's version, and the fields
    # below intake.low_confidence that the operator should check.
    category_confidence: float | None = None
    department_confidence: float | None = None
    departments_top3: tuple[tuple[str, float], ...] = ()
    model_version: str | None = None
    low_confidence: tuple[str, ...] = ()


def _best(
    m: Matcher, text: str, groups: Iterable[tuple[str, list[str]]]
) -> tuple[str, list[str]] | None:
    """The group with the most distinct matching keywords; ties: the keyword heard first."""
    best: tuple[tuple[int, int, int], str, list[str]] | None = None
    for order, (name, keywords) in enumerate(groups):
        hits = m.hits(text, keywords)
        if not hits:
            continue
        rank = (-len(hits), hits[0][0], order)
        if best is None or rank < best[0]:
            best = (rank, name, [k for _, k in hits])
    return (best[1], best[2]) if best else None


def _override(settings: Settings, m: Matcher, text: str, field: str) -> str | None:
    for rule in settings.intake.routing_overrides:
        value = getattr(rule, field)
        folded = text.casefold()
        if value is not None and all(m.position(folded, k)[0] >= 0 for k in rule.keywords):
            return str(value)
    return None


def _choose(
    settings: Settings,
    m: Matcher,
    text: str,
    p: Prediction | None,
    groups: Sequence[tuple[str, list[str]]],
) -> tuple[str, bool, tuple[str, ...]] | None:
    """(value, from the model?, hint keywords) or None: the model where it is sure; the
    keyword hints where it is not (below intake.low_confidence) or where it hesitates
    between close candidates (within intake.hint_margin: then only among those)."""
    known = {name for name, _ in groups}
    top = [(label, prob) for label, prob in (p.top if p else ()) if label in known]
    if top and top[0][1] >= settings.intake.low_confidence:
        close = [label for label, prob in top if prob >= top[0][1] - settings.intake.hint_margin]
        if len(close) == 1:
            return top[0][0], True, ()
        hint = _best(m, text, (g for g in groups if g[0] in close))
        return (hint[0], False, tuple(hint[1])) if hint else (top[0][0], True, ())
    hint = _best(m, text, groups)
    return (hint[0], False, tuple(hint[1])) if hint else None


def _category(
    settings: Settings,
    m: Matcher,
    text: str,
    line: LineConfig,
    menu_category: str | None,
    p: Prediction | None,
) -> tuple[str, CategorySource]:
    if menu_category and settings.category(menu_category):
        return menu_category, "menu"
    if (rule := _override(settings, m, text, "category")) is not None:
        return rule, "override"
    if p is not None and settings.category(p.label) is None:
        # The model learned a category this office does not register (表扬 where it is
        # not in config.yaml): the line's default, which the operator sees as 低置信度.
        return line.default_category, "line_default"
    chosen = _choose(settings, m, text, p, [(c.name, c.keywords) for c in settings.categories])
    if chosen is None:
        return line.default_category, "line_default"
    return chosen[0], "text"


def _department(
    settings: Settings, m: Matcher, text: str, line: LineConfig, p: Prediction | None
) -> tuple[str, DepartmentSource, tuple[str, ...]]:
    if (rule := _override(settings, m, text, "department")) is not None:
        return rule, "override", ()
    chosen = _choose(settings, m, text, p, [(d.name, d.keywords) for d in settings.departments])
    if chosen is None:
        return line.default_department, "line_default", ()
    return chosen[0], "model" if chosen[1] else "keywords", chosen[2]


def _probability(said: dict[str, Prediction], name: str, *labels: str) -> float:
    p = said.get(name)
    return sum(prob for label, prob in p.top if label in labels) if p else 0.0


def _scope(
    settings: Settings, m: Matcher, text: str, said: dict[str, Prediction]
) -> ScopeFlag | None:
    intake = settings.intake
    veto = 0 < intake.emergency_veto <= _probability(said, "urgency", "normal")
    # Emergency rules first: "起诉" must not hide "着火" in the same statement.
    rules = sorted(settings.scope_rules, key=lambda r: r.kind != "emergency")
    for rule in rules:
        if rule.kind == "emergency" and veto:
            continue
        emergency = rule.kind == "emergency"
        hits = m.hits(text, rule.keywords, emergency=emergency, mentions=not emergency)
        if hits:
            return ScopeFlag(rule.name, rule.kind, rule.advice, hits[0][1])
    guess = said.get("scope")
    rule = next((r for r in rules if guess and r.name == guess.label), None)
    if (
        guess is not None
        and rule is not None
        and rule.kind == "emergency"
        and 0 < intake.emergency_by_model <= guess.probability
    ):
        return ScopeFlag(rule.name, rule.kind, rule.advice, "")
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
    settings: Settings,
    text: str,
    *,
    line: LineConfig,
    menu_category: str | None = None,
    model: IntakeModel | None = None,
) -> Analysis:
    """Category, department, urgency, scope, address and phone numbers of one statement.

    `model` defaults to the deployed (or default) intake model of the storage folder."""
    text = normalize_transcript(text)
    m = matcher(settings.intake)
    # A greeting alone says nothing: the line's defaults, as without a model.
    heard = bool(_FILLER.sub("", text).strip())
    if model is None and settings.intake.use_model and heard:
        from ivr.intake.model import current  # scikit-learn loads only when a draft is made

        model = current(settings.storage_path)
    said = model.predict_one(text) if model is not None and heard else {}
    category, category_source = _category(
        settings, m, text, line, menu_category, said.get("category")
    )
    department, department_source, department_keywords = _department(
        settings, m, text, line, said.get("department")
    )
    scope = _scope(settings, m, text, said)
    urgency_keywords = tuple(k for _, k in m.hits(text, settings.urgency.keywords))
    phones = tuple(extract_phone_numbers(text, area_code=settings.city.area_code))
    confidence = {
        name: said[name].probability if name in said and said[name].label == value else None
        for name, value in (("category", category), ("department", department))
    }
    low = tuple(
        name
        for name in ("category", "department")
        if name in said
        and (confidence[name] or 0.0) < settings.intake.low_confidence
        and (name != "category" or category_source != "menu")
    )
    return Analysis(
        text=text,
        category=category,
        category_source=category_source,
        department=department,
        department_source=department_source,
        department_keywords=department_keywords,
        urgent=bool(urgency_keywords)
        or (scope is not None and scope.kind == "emergency")
        or 0
        < settings.intake.urgent_by_model
        <= _probability(said, "urgency", "urgent", "emergency"),
        urgency_keywords=urgency_keywords,
        scope=scope,
        address=extract_address(text, settings.city) if text else None,
        phone_numbers=phones,
        summary=summarize(text, phones),
        category_confidence=confidence["category"],
        department_confidence=confidence["department"],
        departments_top3=said["department"].top if "department" in said else (),
        model_version=model.version if model is not None and said else None,
        low_confidence=low,
    )
