"""`ivr intake train|eval|retrain|status`: the draft model, from the corpus, the office's
history and the operators' corrections."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ivr.cli.common import Ctx, fail, pass_ctx

if TYPE_CHECKING:
    from ivr.intake.training import TrainResult


@click.group()
def intake() -> None:
    """The intake model that drafts category and department."""


def _percent(acc: dict[str, float] | None) -> str:
    if not acc:
        return "-"
    return "  ".join(f"{name} {100 * v:.1f}%" for name, v in acc.items())


def _train_and_report(train: Callable[[], TrainResult]) -> None:
    """Train, print what was measured; exit 1 when the new model was not deployed."""
    try:
        result = train()
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"trained {result.version} on {result.rows} rows in {result.seconds:.1f} s")
    if result.kfold:
        click.echo(f"k-fold accuracy:            {_percent(result.kfold)}")
    click.echo(f"held-out test ({result.test_rows} rows): new {_percent(result.test)}")
    if result.current_version is not None:
        click.echo(f"{'':27}current {result.current_version}: {_percent(result.current_test)}")
    if result.deployed:
        click.echo(f"deployed: new drafts come from {result.version}")
    else:
        click.echo(f"not deployed: it scores lower than {result.current_version}")
        raise SystemExit(1)


@intake.command("train")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The office's past tickets (.csv or .xlsx: text, category, department[, urgent]).",
)
@click.option("--folds", type=click.IntRange(0, 20), default=5, show_default=True)
@pass_ctx
def train_cmd(c: Ctx, source: Path | None, folds: int) -> None:
    """Train on the corpus (+ history); deploy only if not worse on the held-out test split."""
    from ivr.intake import training

    storage = c.settings.storage_path
    if source is None:
        _train_and_report(
            lambda: training.train(storage, training.saved_history(storage), folds=folds)
        )
    else:
        _train_and_report(lambda: training.train_from_table(storage, source, folds=folds))


@intake.command("retrain")
@click.option("--folds", type=click.IntRange(0, 20), default=5, show_default=True)
@pass_ctx
def retrain_cmd(c: Ctx, folds: int) -> None:
    """Add the drafts operators corrected before accepting them, and train again."""
    from ivr.intake import training
    from ivr.store import Database, SchemaNotReady

    db = Database(c.settings.resolved_database_url)
    try:
        db.check_schema()
        with db.read() as s:
            fixed = training.corrections(s)
    except SchemaNotReady as exc:
        fail(str(exc))
    finally:
        db.dispose()
    click.echo(f"{len(fixed)} corrected drafts")
    storage = c.settings.storage_path
    extra = [*training.saved_history(storage), *fixed]
    _train_and_report(lambda: training.train(storage, extra, folds=folds, source="retrain"))


@intake.command("eval")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Labelled cases (.csv/.xlsx); default: the corpus test split.",
)
@click.option("--cer", type=click.FloatRange(0, 1), default=0.0, help="Simulated ASR errors.")
@click.option("--seed", type=int, default=0, show_default=True)
@pass_ctx
def eval_cmd(c: Ctx, source: Path | None, cer: float, seed: int) -> None:
    """Per-field accuracy of the drafts and the category confusion matrix."""
    from ivr.intake.corpus import load_corpus, load_table
    from ivr.intake.evaluate import evaluate, format_accuracy, format_confusion
    from ivr.intake.model import current
    from ivr.intake.noise import HomophoneChannel

    try:
        rows = load_table(source) if source else [e for e in load_corpus() if e.split == "test"]
    except ValueError as exc:
        fail(str(exc))
    if not rows:
        fail("no labelled rows to evaluate")
    model = current(c.settings.storage_path) if c.settings.intake.use_model else None
    texts = None
    if cer > 0:
        texts, measured = HomophoneChannel(seed=seed).corrupt_all([e.text for e in rows], cer)
        click.echo(f"simulated character error rate {100 * measured:.1f}%")
    report = evaluate(c.settings, rows, model=model, texts=texts)
    click.echo(f"model {model.version if model else '(none: keyword rules)'}: {report.rows} cases")
    click.echo(format_accuracy(report))
    click.echo(format_confusion(report))


@intake.command("status")
@pass_ctx
def status_cmd(c: Ctx) -> None:
    """The deployed model and the versions kept in storage_dir/models."""
    from ivr.intake.model import read_manifest

    manifest = read_manifest(c.settings.storage_path)
    current_version = manifest.get("current")
    if current_version is None:
        click.echo("no trained model deployed: drafts use the default model of the corpus")
    for m in manifest.get("models", []):
        mark = "*" if m["version"] == current_version else " "
        click.echo(
            f"{mark} {m['version']}  {m.get('source', '')}  rows {m.get('rows', '?')}  "
            f"test {_percent(m.get('test'))}"
        )
