"""`ivr simulate` (an offline call) and `ivr call` (a test caller against a deployment)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ivr.cli.common import Ctx, fail, pass_ctx, ticket_text
from ivr.flow import Gather, Hangup, Record, Say, Transfer, Verb


def _show_verb(verb: Verb) -> str:
    if isinstance(verb, Say):
        return f"  IVR: {verb.text}"
    if isinstance(verb, Gather):
        return "\n".join(
            [*(f"  IVR: {p.text}" for p in verb.prompts), f"  [waits for {verb.num_digits} key(s)]"]
        )
    if isinstance(verb, Record):
        return f"  [records up to {verb.max_length_s}s, # ends]"
    if isinstance(verb, Transfer):
        return f"  [transfers to {verb.target}]"
    if isinstance(verb, Hangup):
        return "  [hangs up]"
    return f"  [{verb}]"


@click.command()
@click.option("--line", default="12345", show_default=True, help="The number dialed.")
@click.option("--from", "caller", required=True, help="The caller's number.")
@click.option("--digits", default="", help="Keys pressed, one per menu (e.g. 2, or 92).")
@click.option("--text", default=None, help="What the caller says.")
@click.option(
    "--audio",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A recording of what the caller says (transcribed).",
)
@click.option("--hangup", is_flag=True, help="The caller hangs up while speaking.")
@click.option("--json", "as_json", is_flag=True, help="Print the ticket as JSON.")
@click.option(
    "--at", default=None, help="Local time of the call, e.g. 2026-12-14T10:00 (default: now)."
)
@pass_ctx
def simulate(
    c: Ctx,
    line: str,
    caller: str,
    digits: str,
    text: str | None,
    audio: Path | None,
    hangup: bool,
    as_json: bool,
    at: str | None,
) -> None:
    """Run the inbound flow offline and print the draft ticket."""
    from ivr.calls.simulate import SimulationError, check_inputs, simulate_inbound

    if at is not None:
        c.set_time(at)
    app = c.hotline()
    try:
        check_inputs(app, line, caller, digits)
        sim = simulate_inbound(
            app,
            line=line,
            caller=caller,
            digits=digits,
            text=text,
            audio=audio,
            hangup_during_recording=hangup,
        )
    except SimulationError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(sim.ticket, ensure_ascii=False, indent=2))
        return
    click.echo("\n".join(_show_verb(v) for v in sim.dialogue))
    click.echo(ticket_text(sim.ticket) if sim.ticket else "no ticket was created")


@click.command("call")
@click.argument("uri")
@click.option("--digits", default="", help="Keys to press after the greeting (e.g. 2).")
@click.option(
    "--audio",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="What to say after the keys (any audio ffmpeg reads).",
)
@click.option(
    "--wait",
    "wait_s",
    default=4.0,
    show_default=True,
    help="Seconds to listen before pressing keys.",
)
@click.option(
    "--timeout", "max_s", default=90.0, show_default=True, help="Hang up after this many seconds."
)
@pass_ctx
def call_cmd(
    c: Ctx, uri: str, digits: str, audio: Path | None, wait_s: float, max_s: float
) -> None:
    """Place a test call to a SIP URI and print what happened, with timings."""
    from ivr.transports.sip.dialer import SipDialer
    from ivr.transports.sip.phone import SipPhone
    from ivr.transports.sip.testcall import place_test_call

    if not uri.startswith(("sip:", "sips:")):
        fail(f"{uri!r}: give a SIP URI such as sip:12345@203.0.113.5:5060")
    from ivr.app import Hotline

    # The test caller runs no flow and stores nothing: no database is needed.
    settings = c.settings.model_copy(
        update={"sip": c.settings.sip.model_copy(update={"port": 0, "mode": "trunk"})}
    )
    phone = SipPhone(Hotline.open(settings, check_schema=False))
    phone.start()
    try:
        result = place_test_call(
            SipDialer(phone), uri, digits=digits, audio=audio, wait_s=wait_s, max_s=max_s
        )
    finally:
        phone.stop()
    for at, what in result.timeline:
        click.echo(f"{at:8.3f}s  {what}")
    click.echo(
        f"outcome: {result.outcome}" + (f" (SIP {result.sip_status})" if result.sip_status else "")
    )
    if result.outcome != "answered":
        sys.exit(1)
