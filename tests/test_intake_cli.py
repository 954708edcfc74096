"""`ivr intake train|eval|retrain`: the office's history, its cases and its operators'
corrections; a model that scores lower than the deployed one is never deployed."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ivr.cli import main
from ivr.intake import model as intake_model
from ivr.intake import training
from ivr.intake.corpus import Example, corpus_files, load_corpus

from .test_config import write_config

pytestmark = pytest.mark.skipif(not corpus_files(), reason="no intake corpus shipped")

# Small enough to train in seconds on a shared machine.
TRAIN_ROWS = 400
TEST_ROWS = 80


def _sample() -> list[Example]:
    rows = load_corpus()
    return [e for e in rows if e.split == "train"][:TRAIN_ROWS] + [
        e for e in rows if e.split == "test"
    ][:TEST_ROWS]


@pytest.fixture
def small_corpus(monkeypatch: pytest.MonkeyPatch) -> list[Example]:
    """Training reads a slice of the corpus; no default model stands in for a deployed one."""
    sample = _sample()
    monkeypatch.setattr(training, "load_corpus", lambda: sample)
    monkeypatch.setattr(intake_model, "corpus_files", lambda: [])
    intake_model._cache.clear()
    return sample


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    def local(d: dict) -> None:  # type: ignore[type-arg]
        d["storage_dir"] = str(tmp_path / "var")
        d["database_url"] = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"

    yield write_config(tmp_path, local)
    intake_model._cache.clear()


def ivr(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "intake", *args])


def _write(path: Path, rows: list[Example], *, split: bool = False) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["text", "category", "department", "urgent", *(["split"] if split else [])])
        for e in rows:
            urgent = "1" if e.urgency in ("urgent", "emergency") else "0"
            out.writerow([e.text, e.category, e.department, urgent, *([e.split] if split else [])])
    return path


def _manifest(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((tmp_path / "var/models/manifest.json").read_text(encoding="utf-8"))


def test_train_from_history_prints_kfold_and_deploys(
    small_corpus: list[Example], config: Path, tmp_path: Path
) -> None:
    history = _write(tmp_path / "history.csv", load_corpus()[TRAIN_ROWS : TRAIN_ROWS + 200])
    r = ivr(config, "train", "--from", str(history), "--folds", "3")
    assert r.exit_code == 0, r.output
    assert "k-fold accuracy:" in r.output and "category" in r.output
    assert "deployed:" in r.output
    manifest = _manifest(tmp_path)
    version = manifest["current"]
    assert (tmp_path / f"var/models/intake-{version}.joblib").exists()
    assert (tmp_path / "var/models/history.tsv").exists()
    assert ivr(config, "status").output.startswith(f"* {version}")


def test_a_worse_model_is_never_deployed(
    small_corpus: list[Example], config: Path, tmp_path: Path
) -> None:
    assert ivr(config, "train", "--folds", "0").exit_code == 0
    good = _manifest(tmp_path)["current"]
    # The same statements, every one labelled wrong: it learns the wrong routing.
    wrong = [
        Example(e.text, "建议", "税务局", split="train") for e in small_corpus if e.split == "train"
    ]
    bad = _write(tmp_path / "bad.csv", wrong * 3, split=True)
    r = ivr(config, "train", "--from", str(bad), "--folds", "0")
    assert r.exit_code == 1, r.output
    assert "not deployed" in r.output
    assert _manifest(tmp_path)["current"] == good


def test_eval_prints_accuracy_and_confusion(
    small_corpus: list[Example], config: Path, tmp_path: Path
) -> None:
    assert ivr(config, "train", "--folds", "0").exit_code == 0
    cases = _write(tmp_path / "cases.csv", [e for e in small_corpus if e.split == "test"])
    r = ivr(config, "eval", "--from", str(cases))
    assert r.exit_code == 0, r.output
    assert f"{TEST_ROWS} cases" in r.output
    assert "category " in r.output and "department " in r.output and "%" in r.output
    assert "expected\\drafted" in r.output
    noisy = ivr(config, "eval", "--from", str(cases), "--cer", "0.2")
    assert "simulated character error rate" in noisy.output


def test_retrain_learns_the_operators_corrections(
    small_corpus: list[Example], config: Path, tmp_path: Path
) -> None:
    from ivr.config import load_config
    from ivr.services.unit import audit
    from ivr.store import Database, upgrade
    from ivr.store.models import Ticket

    settings = load_config(config, env={})
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    statements = {
        "隔壁那个养鸽子的天天把鸽子粪掉到我家阳台上": ("投诉", "城市管理综合执法局", True),
        "那个鸽子棚天天有鸽子粪落下来怎么整": ("投诉", "城市管理综合执法局", False),
    }
    with db.session() as s:
        for i, (text, (category, department, accepted)) in enumerate(statements.items()):
            t = Ticket(
                number=f"12345-20261123-{i:05d}",
                status="registered" if accepted else "draft",
                line_number="12345",
                category=category,
                category_source="operator",
                department=department,
                department_source="operator",
                statement=text,
                contact_due=date(2026, 11, 25),
                due_date=date(2026, 12, 14),
                created_at=now,
                updated_at=now,
            )
            s.add(t)
            s.flush()
            change = {"department": {"old": "公安局", "new": department}}
            audit(s, "wang", "ticket.update", t, change, now)
            if accepted:
                audit(s, "wang", "ticket.accept", t, {}, now)
    with db.read() as s:
        fixed = training.corrections(s)
    db.dispose()
    # only the draft accepted after the change counts
    assert [e.text for e in fixed] == ["隔壁那个养鸽子的天天把鸽子粪掉到我家阳台上"]
    assert (fixed[0].category, fixed[0].department) == ("投诉", "城市管理综合执法局")

    r = ivr(config, "retrain", "--folds", "0")
    assert r.exit_code == 0, r.output
    assert "1 corrected drafts" in r.output
    assert "deployed:" in r.output
