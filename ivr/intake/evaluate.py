"""How right the drafts are: the whole intake (model + config rules) against labelled rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.config import LineConfig, Settings
from ivr.intake.analyze import Analysis, analyze
from ivr.intake.corpus import Example
from ivr.intake.model import IntakeModel

FIELDS = ("category", "department", "urgency", "scope")


def urgency_of(result: Analysis) -> str:
    if result.scope is not None and result.scope.kind == "emergency":
        return "emergency"
    return "urgent" if result.urgent else "normal"


def _drafted(result: Analysis, name: str) -> str:
    if name == "urgency":
        return urgency_of(result)
    if name == "scope":
        return result.scope.rule if result.scope else "in"
    return str(getattr(result, name))


def _expected(example: Example, name: str) -> str | None:
    value: str | None = getattr(example, name)
    # An out-of-scope row without a department says nothing about routing.
    return value or None


@dataclass
class Report:
    rows: int = 0
    right: Counter[str] = field(default_factory=Counter)
    labelled: Counter[str] = field(default_factory=Counter)
    # (expected, drafted) category pairs.
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    def accuracy(self) -> dict[str, float]:
        return {f: self.right[f] / self.labelled[f] for f in FIELDS if self.labelled[f]}


def evaluate(
    settings: Settings,
    examples: Sequence[Example],
    *,
    model: IntakeModel | None,
    line: LineConfig | None = None,
    texts: Sequence[str] | None = None,
) -> Report:
    """Draft every row (optionally from other `texts`, e.g. through a noise channel)."""
    line = line or settings.line(settings.hotline)
    assert line is not None
    report = Report()
    for i, example in enumerate(examples):
        text = texts[i] if texts is not None else example.text
        result = analyze(settings, text, line=line, model=model)
        report.rows += 1
        for name in FIELDS:
            expected = _expected(example, name)
            if expected is None:
                continue
            report.labelled[name] += 1
            report.right[name] += _drafted(result, name) == expected
        report.confusion[(example.category, result.category)] += 1
    return report


def format_accuracy(report: Report) -> str:
    acc = report.accuracy()
    return "  ".join(
        f"{name} {100 * acc[name]:.1f}% ({report.right[name]}/{report.labelled[name]})"
        for name in FIELDS
        if name in acc
    )


def format_confusion(report: Report) -> str:
    """Rows: the expected category; columns: the drafted one."""
    labels = sorted({c for pair in report.confusion for c in pair})
    width = max(4, *(len(c) * 2 for c in labels))
    head = "expected\\drafted".ljust(width + 2) + "".join(c.rjust(width) for c in labels)
    lines = [head]
    for expected in labels:
        counts = "".join(str(report.confusion[(expected, d)]).rjust(width) for d in labels)
        lines.append(expected.ljust(width + 2) + counts)
    return "\n".join(lines)
