"""`ivr jobs ...`: dead letters and queue depth."""

from __future__ import annotations

import json
from typing import Any

import click

from ivr.cli.common import Ctx, fail, pass_ctx


@click.group()
def jobs() -> None:
    """The job queue: depth and dead letters (jobs that failed every retry)."""


def _jobs(c: Ctx) -> Any:
    from ivr.jobs import open_jobs
    from ivr.jobs.broker import BrokerError

    try:
        q = open_jobs(c.settings)
    except BrokerError as exc:
        fail(str(exc), 1)
    if q.embedded:
        click.echo(
            "note: no jobs.broker_url (REDIS_URL): jobs run inside `ivr serve`, "
            "this command sees only its own (empty) queue and what the database records",
            err=True,
        )
    return q


@jobs.command("dead")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def jobs_dead(c: Ctx, limit: int, as_json: bool) -> None:
    """List dead-lettered jobs, newest first."""
    from ivr.jobs import dead_letters
    from ivr.queries.recordings import lost_fetches

    q = _jobs(c)
    letters = dead_letters(q, limit)
    if q.embedded:  # the queue is inside `ivr serve`: what the database remembers
        with c.hotline().db.read() as s:
            letters += lost_fetches(s, limit)
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in letters], ensure_ascii=False, indent=2))
        return
    if not letters:
        click.echo("no dead jobs")
    for d in letters:
        when = d.failed_at.isoformat(timespec="seconds") if d.failed_at else "-"
        click.echo(f"{d.message_id}  {when}  {d.job}  {json.dumps(d.payload)}  retries {d.retries}")
        click.echo(f"    {d.error}")


@jobs.command("retry")
@click.argument("message_id")
@pass_ctx
def jobs_retry(c: Ctx, message_id: str) -> None:
    """Queue a dead job again (it leaves the dead letters)."""
    from ivr.jobs import requeue_dead
    from ivr.jobs.dead import NoSuchDeadLetter

    if message_id.startswith("recording:"):
        _retry_lost_fetch(c, message_id)
        return
    try:
        letter = requeue_dead(_jobs(c), message_id)
    except NoSuchDeadLetter as exc:
        fail(str(exc), 1)
    click.echo(f"queued again: {letter.job} {json.dumps(letter.payload)}")


def _retry_lost_fetch(c: Ctx, message_id: str) -> None:
    """A lost recording (as `ivr jobs dead` lists it): fetched once more; embedded, here."""
    from ivr.jobs.registry import register_jobs

    ref = message_id.removeprefix("recording:")
    if not ref.isdigit():
        fail(f"no dead letter {message_id!r}", 1)
    q = _jobs(c)
    intake = register_jobs(c.hotline(), q)
    ev = intake.retry_lost(int(ref))
    if ev is None:
        q.close(wait=False)
        fail(f"no lost recording {ref} (or TWILIO_ACCOUNT_SID is not set)", 1)
    q.close(wait=True, timeout=600)
    click.echo(f"queued again: recording {ev.recording_sid} of call {ev.call_sid}")


@jobs.command("depth")
@pass_ctx
def jobs_depth(c: Ctx) -> None:
    """Jobs queued, delayed or running, by queue."""
    for queue, n in _jobs(c).depth().items():
        click.echo(f"{queue:10} {n}")
