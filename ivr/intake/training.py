"""Train a new intake model and deploy it only if it is at least as good as the current one.

Training rows: the shipped corpus, the office's history (kept in
storage_dir/models/history.tsv once given) and the operators' corrections. The
held-out test rows (corpus split=test, ~15 % of the office's rows) are never
trained on; both models are scored on them.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.intake.corpus import Example, held_out, load_corpus, load_table
from ivr.intake.fitting import fit_with_kfold
from ivr.intake.model import accuracy, current, deploy, models_dir, new_version, score
from ivr.store.models import AuditEntry, Ticket

HISTORY = "history.tsv"
_COLUMNS = ("text", "category", "department", "urgency", "scope", "split")


@dataclass
class TrainResult:
    version: str
    rows: int
    test_rows: int
    kfold: dict[str, float]
    test: dict[str, float]
    current_version: str | None
    current_test: dict[str, float] | None
    deployed: bool
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def history_path(storage: Path) -> Path:
    return models_dir(storage) / HISTORY


def saved_history(storage: Path) -> list[Example]:
    path = history_path(storage)
    return load_table(path) if path.exists() else []


def save_history(storage: Path, rows: Iterable[Example]) -> None:
    """Keep the office's rows so that a later `retrain` still learns from them."""
    path = history_path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(_COLUMNS)
        for e in rows:
            out.writerow(
                [e.text, e.category, e.department, e.urgency or "", e.scope or "", e.split]
            )


def train(
    storage: Path,
    extra: Sequence[Example] = (),
    *,
    folds: int = 5,
    source: str = "corpus",
    now: datetime | None = None,
    corpus: Sequence[Example] | None = None,
) -> TrainResult:
    """Fit on corpus + extra rows; deploy unless the current model is better on the test rows."""
    started = time.perf_counter()
    rows = [*(load_corpus() if corpus is None else corpus), *extra]
    train_rows = [e for e in rows if e.split != "test"]
    test_rows = [e for e in rows if e.split == "test"]
    if not train_rows:
        raise ValueError("nothing to train on: no corpus and no rows given")
    version = new_version(now)
    info = {"source": source, "rows": len(train_rows), "trained_at": version}
    candidate, kfold = fit_with_kfold(train_rows, version, info, folds)
    test = accuracy(candidate, test_rows)
    previous = current(storage)
    previous_test = accuracy(previous, test_rows) if previous is not None else None
    better = previous_test is None or score(test) >= score(previous_test)
    if better:
        candidate.info.update({"kfold": kfold, "test": test, "test_rows": len(test_rows)})
        deploy(storage, candidate)
    return TrainResult(
        version=version,
        rows=len(train_rows),
        test_rows=len(test_rows),
        kfold=kfold,
        test=test,
        current_version=previous.version if previous is not None else None,
        current_test=previous_test,
        deployed=better,
        seconds=time.perf_counter() - started,
    )


def train_from_table(storage: Path, path: Path, **kw: Any) -> TrainResult:
    rows = load_table(path)
    if not rows:
        raise ValueError(f"{path}: no rows")
    result = train(storage, rows, source=path.name, **kw)
    if result.deployed:
        save_history(storage, rows)
    return result


def _changed(detail: dict[str, Any]) -> set[str]:
    # The API audits {"changes": {...}}, the console the changes themselves.
    changes = detail.get("changes", detail) if isinstance(detail, dict) else {}
    return {f for f in ("category", "department") if isinstance(changes, dict) and f in changes}


def corrections(session: Session) -> list[Example]:
    """Drafts whose category or department an operator changed before accepting them,
    with the values the operator chose."""
    edits: dict[int, datetime] = {}
    accepted: dict[int, datetime] = {}
    rows = session.execute(
        select(AuditEntry.ticket_id, AuditEntry.action, AuditEntry.at, AuditEntry.detail).where(
            AuditEntry.action.in_(("ticket.update", "ticket.accept")),
            AuditEntry.ticket_id.is_not(None),
        )
    )
    for ticket_id, action, at, detail in rows:
        if action == "ticket.accept":
            accepted.setdefault(ticket_id, at)
        elif _changed(detail or {}):
            edits[ticket_id] = min(at, edits.get(ticket_id, at))
    ids = [t for t, at in edits.items() if t in accepted and at <= accepted[t]]
    if not ids:
        return []
    tickets = session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id))
    return [
        Example(
            text=t.statement,
            category=t.category,
            department=t.department,
            # ticket.urgent folds emergencies into urgent: no urgency label from it.
            urgency=None,
            split="test" if held_out(t.statement) else "train",
        )
        for t in tickets
        if t.statement
    ]
