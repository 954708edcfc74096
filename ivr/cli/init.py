"""`ivr init [DIR]`: start a deployment folder (registered by ivr.cli).

The folder gets the shipped config.yaml (relative paths in it resolve against the
folder: var/ for the database and recordings, callflows/, asr_models/), a copy of
the shipped call flows and prompt clips to edit, and an empty var/. It runs without
a configuration, since it makes the first one.
"""

from __future__ import annotations

import shutil
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import click

from ivr.config import DEFAULT_CONFIG, ConfigError, load_config
from ivr.shipped import shipped


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _version() -> str:
    try:
        return version("hotline-ivr")
    except PackageNotFoundError:
        return "(source tree)"


def _header(target: Path) -> str:
    return (
        f"# Written by `ivr init` (hotline-ivr {_version()}) for the deployment in {target}.\n"
        "# Relative paths below (database_url, storage_dir, asr.models_dir, flows.dir)\n"
        "# resolve against this folder. Run `ivr` from here, or pass --config / IVR_CONFIG.\n#\n"
    )


def write_deployment(target: Path, force: bool = False) -> list[str]:
    """Create the deployment files in `target`; return what was done, one line each."""
    done: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    config = target / "config.yaml"
    if config.exists() and not force:
        raise FileExistsError(f"{config} already exists; use --force to overwrite it")
    config.write_text(_header(target) + DEFAULT_CONFIG.read_text(encoding="utf-8"), "utf-8")
    done.append("config.yaml   written (the shipped defaults: edit lines, city, departments, ...)")

    flows = target / "callflows"
    if flows.exists():
        done.append("callflows/    kept (already there)")
    else:
        shutil.copytree(shipped("callflows"), flows, ignore=shutil.ignore_patterns("__pycache__"))
        done.append("callflows/    copied (call flows and the prompt clips they play)")

    var = target / "var"
    existed = var.is_dir()
    var.mkdir(exist_ok=True)
    done.append(f"var/          {'kept' if existed else 'created'} (database, recordings)")
    return done


@click.command("init")
@click.argument(
    "directory",
    required=False,
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--force", is_flag=True, help="Overwrite an existing config.yaml.")
def init(directory: Path, force: bool) -> None:
    """Start a deployment in DIRECTORY (default: here): config.yaml, callflows/, var/."""
    target = directory.resolve()
    try:
        done = write_deployment(target, force=force)
        settings = load_config(target / "config.yaml", env={})
    except FileExistsError as exc:
        _fail(str(exc))
    except (OSError, ConfigError) as exc:
        _fail(f"cannot initialise {target}: {exc}", 1)
    click.echo(f"hotline-ivr deployment in {target}:")
    for line in done:
        click.echo(f"  {line}")
    cd = "" if target == Path.cwd().resolve() else f"  cd {target}\n"
    click.echo(
        "\nNext steps:\n"
        f"{cd}"
        "  ivr check                  # the configuration, call flows and prompt clips\n"
        "  ivr db upgrade             # create the database (SQLite in var/; set DATABASE_URL\n"
        "                             # for PostgreSQL)\n"
        f"  ivr models install {settings.asr.model}   # the speech model, into asr_models/\n"
        "  ivr users add admin --role admin           # an account for the operator console\n"
        '  ivr simulate --from 13800138000 --digits 2 --text "..."   # a call, offline\n'
        f"  ivr serve                  # http://{settings.http.host}:{settings.http.port}/console\n"
        "Secrets come from the environment only (DATABASE_URL, TWILIO_AUTH_TOKEN, "
        "IVR_SIP_PASSWORD, ...)."
    )
