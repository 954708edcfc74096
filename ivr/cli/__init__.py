"""The `ivr` command: one click group; each command group lives in its own module."""

from __future__ import annotations

import os

import click

from ivr.cli.common import Ctx, fail
from ivr.runtime import logs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="IVR_CONFIG",
    help="config.yaml to use (default: the project's).",
)
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """hotline-ivr: answer 12345 calls, draft tickets, run satisfaction callbacks."""
    try:
        logs.setup(log_level, os.environ.get("IVR_LOG_FORMAT", "text"))
    except ValueError as exc:
        fail(f"IVR_LOG_FORMAT: {exc}")
    ctx.obj = Ctx(config_path)


def _register() -> None:
    from ivr.cli import (
        asr,
        calendar,
        callbacks,
        calls,
        campaigns,
        init,
        intake,
        jobs,
        kb,
        report,
        run,
        tickets,
        users,
    )

    main.add_command(run.serve)
    main.add_command(run.db)
    main.add_command(run.check)
    main.add_command(calls.simulate)
    main.add_command(calls.call_cmd)
    main.add_command(tickets.tickets)
    main.add_command(callbacks.callbacks)
    main.add_command(campaigns.campaign)
    main.add_command(users.users)
    main.add_command(jobs.jobs)
    main.add_command(kb.kb)
    main.add_command(report.report)
    main.add_command(asr.models)
    main.add_command(asr.transcribe)
    main.add_command(calendar.calendar)
    main.add_command(init.init)
    main.add_command(intake.intake)


_register()
