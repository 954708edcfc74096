"""`ivr models ...` and `ivr transcribe ...` (registered by ivr.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ivr.asr.audio import AudioError
from ivr.asr.files import transcribe_file
from ivr.asr.install import install_model
from ivr.asr.models import (
    ModelError,
    get_model,
    list_models,
    load_manifest,
    locate,
    model_status,
    models_dir,
    verify_model_dir,
)
from ivr.config import ConfigError, Settings, load_config


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _settings() -> Settings:
    """The settings the `ivr` group loaded (ctx.obj), else config.yaml as load_config finds it."""
    ctx = click.get_current_context(silent=True)
    obj: Any = ctx.obj if ctx is not None else None
    if isinstance(obj, dict) and isinstance(obj.get("settings"), Settings):
        return obj["settings"]
    found = getattr(obj, "settings", None)
    if isinstance(found, Settings):
        return found
    try:
        return load_config()
    except ConfigError as exc:
        _fail(str(exc), 2)


def _with_model(settings: Settings, name: str | None) -> Settings:
    if not name:
        return settings
    return settings.model_copy(update={"asr": settings.asr.model_copy(update={"model": name})})


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


@click.group("models")
def models() -> None:
    """Vosk speech recognition models: list, install, verify."""


@models.command("list")
def list_cmd() -> None:
    """Known and installed models (* marks the configured one)."""
    settings = _settings()
    try:
        rows = list_models(settings.asr, settings.base_dir)
    except ModelError as exc:
        _fail(str(exc))
    click.echo(f"models folder: {models_dir(settings.asr, settings.base_dir)}")
    for st in rows:
        mark = "*" if st.name == settings.asr.model else " "
        lang = st.spec.language if st.spec else "?"
        rate = st.spec.sample_rate if st.spec else "?"
        size = _size(st.spec.size) if st.spec and st.spec.url else "-"
        where = f"  {st.path}" if st.path else ""
        if st.state == "package" and st.spec and st.spec.package:
            state = f"installed (python package {st.spec.package})"
        elif st.state == "damaged":
            state = "damaged: " + "; ".join(st.problems)
        else:
            state = st.state
        click.echo(f"{mark} {st.name:<28} {lang:<6} {rate!s:>6} Hz {size:>9}  {state}{where}")
    if settings.asr.model not in {st.name for st in rows}:
        click.echo(f"* {settings.asr.model} (configured, unknown)")


@models.command("install")
@click.argument("name")
@click.option(
    "--from", "source", type=click.Path(exists=True, path_type=Path),
    help="Install from this zip or unpacked folder instead of downloading.",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Reinstall even if the model is installed.")
def install_cmd(name: str, source: Path | None, force: bool) -> None:
    """Download (or copy) a model, check its size and sha256 and unpack it."""
    settings = _settings()
    root = models_dir(settings.asr, settings.base_dir)
    try:
        manifest = load_manifest()
        spec = manifest.get(name)
        status = model_status(name, root / name, spec)
        if not force and status.state in ("installed", "package"):
            click.echo(f"{name} is already installed at {status.path} (--force to reinstall)")
            return
        path = install_model(
            name, root, source=source, manifest=manifest, force=force, progress=True
        )
    except ModelError as exc:
        _fail(str(exc))
    click.echo(f"installed {name} at {path}")


@models.command("verify")
@click.argument("name", required=False)
@click.option("--load", is_flag=True, help="Also load the model into Vosk.")
def verify_cmd(name: str | None, load: bool) -> None:
    """Check that a model (default: the configured one) is whole."""
    settings = _with_model(_settings(), name)
    label = settings.asr.model
    try:
        path = locate(settings.asr, settings.base_dir)
    except ModelError as exc:
        _fail(str(exc))
    problems = verify_model_dir(path)
    if problems:
        _fail(f"{label} at {path} is damaged: " + "; ".join(problems))
    if load:
        try:
            loaded = get_model(settings.asr, settings.base_dir)
        except ModelError as exc:
            _fail(str(exc))
        click.echo(
            f"{label}: OK at {path} (loaded in {loaded.load_seconds:.1f} s, "
            f"{loaded.sample_rate} Hz)"
        )
        return
    click.echo(f"{label}: OK at {path}")


@click.command("transcribe")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option("--model", "model_name", default=None, help="Model to use instead of asr.model.")
@click.option(
    "--pending",
    is_flag=True,
    help="Transcribe the stored recordings waiting for a model, and fill in drafts.",
)
def transcribe(
    files: tuple[Path, ...], as_json: bool, model_name: str | None, pending: bool
) -> None:
    """Transcribe recordings (WAV, MP3, anything ffmpeg reads) with the configured model."""
    if not files and not pending:
        _fail("give recordings to transcribe, or --pending", 2)
    settings = _with_model(_settings(), model_name)
    try:
        model = get_model(settings.asr, settings.base_dir)
    except ModelError as exc:
        _fail(str(exc))
    if pending:
        _transcribe_pending(settings, model)
    failed = 0
    for path in files:
        try:
            result = transcribe_file(path, model, end_of_speech_ms=settings.asr.end_of_speech_ms)
        except AudioError as exc:
            failed += 1
            if as_json:
                click.echo(json.dumps({"file": str(path), "error": str(exc)}, ensure_ascii=False))
            click.echo(f"error: {exc}", err=True)
            continue
        if as_json:
            click.echo(json.dumps({"file": str(path), **result.to_dict()}, ensure_ascii=False))
        elif len(files) == 1:
            click.echo(result.text)
        else:
            click.echo(f"{path}\t{result.text}")
    if failed:
        sys.exit(1)


def _transcribe_pending(settings: Settings, model: Any) -> None:
    from ivr.app import Hotline
    from ivr.calls.transcription import transcribe_pending
    from ivr.store import SchemaNotReady

    try:
        app = Hotline.open(settings)
    except SchemaNotReady as exc:
        _fail(str(exc), 2)
    done, failed = transcribe_pending(app, model)
    app.close()
    click.echo(f"transcribed {done} pending recording(s), {failed} failed")
    if failed:
        sys.exit(1)
