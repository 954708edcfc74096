"""baresip through Kamailio to the registered IVR; calls and drafts survive a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.sipfix import (
    caller_pcap,
    clip_seconds,
    flow_prompt,
    need_peers,
    running_ivr,
    sip_settings,
    statement,
)
from harness.sipkit import Baresip, Kamailio, run_sipp
from harness.sipkit.baresip import caller_wav
from ivr.config import Settings


def test_baresip_calls_the_registered_ivr_through_kamailio(
    base_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_peers("kamailio", "baresip")
    monkeypatch.setenv("IVR_SIP_PASSWORD", "secret")
    with Kamailio(workdir=tmp_path / "kam", ivr_user="12345") as kam:
        settings = sip_settings(
            base_settings,
            tmp_path,
            mode="register",
            registrar=f"{kam.host}:{kam.port}",
            username="12345",
            trunk_peers=[],
        )
        with running_ivr(settings) as ivr:
            assert ivr.phone.registered.wait(30), "the IVR did not register"
            assert kam.wait_registered("12345")
            # The caller presses 2 one second into the greeting (which stops it), hears
            # the statement prompt and the beep, and starts talking 1.5 s later.
            key_at = 1.0
            wait_s = (
                key_at + clip_seconds(settings, flow_prompt(settings, "inbound", "statement")) + 1.5
            )
            silence = caller_wav(statement(1), tmp_path / "stmt.wav", trailing_silence_s=0)
            pcm = b"\x00\x00" * int(8000 * wait_s) + Path(silence).read_bytes()[44:]
            from harness.sipkit.pcap import write_pcm16_wav

            audio = write_pcm16_wav(tmp_path / "caller.wav", pcm + b"\x00\x00" * 8000 * 40)
            with Baresip(
                workdir=tmp_path / "bs",
                registrar=kam.address,
                audio_wav=audio,
                trailing_silence_s=0,
            ) as phone:
                phone.dial(kam.uri("12315"))
                phone.wait_event("CALL_ESTABLISHED", timeout=30)
                # A caller presses during the greeting, not in the first milliseconds:
                # a key sent by baresip at the instant of CALL_ESTABLISHED was lost in
                # about one run in three (not yet known on which side; SIPp callers'
                # keys during the greeting are never lost).
                time.sleep(key_at)
                phone.send_dtmf("2")
                # No '#': the caller just stops talking, so end of speech ends the
                # recording however late the prompts ran on a loaded machine.
                closed = phone.wait_event("CALL_CLOSED", timeout=90)
            ivr.wait_idle()
            rows = ivr.rows()
    assert closed  # the IVR read back the ticket and hung up
    (call,) = rows["calls"]
    assert call.line_number == "12315" and call.status == "completed"
    (ticket,) = rows["tickets"]
    assert ticket.category == "投诉" and ticket.line_number == "12315"
    (rec,) = rows["recordings"]
    assert rec.duration_s and rec.duration_s > 2
    assert rows["transcripts"] and rows["transcripts"][0].text


def test_calls_and_drafts_survive_a_restart(base_settings: Settings, tmp_path: Path) -> None:
    need_peers("sipp")
    settings = sip_settings(base_settings, tmp_path, short_prompts=True)
    numbers = []
    for digit, line in (("1", "12333"), ("4", "12319")):
        with running_ivr(settings, asr=False) as ivr:
            pcap = caller_pcap(settings, tmp_path, line, digit=digit, n=int(digit) + 1)
            result = run_sipp(
                "uac_call",
                ivr.hostport,
                service=line,
                keys={"caller": "13800138000"},
                media={"media.pcap": pcap},
                timeout=120,
                recv_timeout=110,
            )
            assert result.ok, result.describe()
            ivr.wait_idle()
            rows = ivr.rows()
            numbers = [t.number for t in rows["tickets"]]
            categories = [t.category for t in rows["tickets"]]
    assert len(numbers) == 2 and numbers[0] != numbers[1]
    assert numbers[0].endswith("-00001") and numbers[1].endswith("-00002")
    assert categories == ["咨询", "建议"]


def test_ivr_call_command_checks_a_deployment(base_settings: Settings, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ivr.cli import main

    need_peers("sipp")
    settings = sip_settings(base_settings, tmp_path)
    with running_ivr(settings, asr=False) as ivr:
        result = CliRunner().invoke(
            main,
            [
                "--config",
                str(Path(__file__).resolve().parents[1] / "config.yaml"),
                "call",
                ivr.uri("12320"),
                "--digits",
                "1",
                "--audio",
                str(statement(2)),
                "--timeout",
                "90",
            ],
        )
        ivr.wait_idle()
        rows = ivr.rows()
    assert result.exit_code == 0, result.output
    for step in ("200 OK", "greeting heard", "sent digits 1", "sent audio", "remote hung up"):
        assert step in result.output
    assert "outcome: answered" in result.output
    (ticket,) = rows["tickets"]
    assert (ticket.line_number, ticket.category) == ("12320", "咨询")


def test_every_line_through_kamailio_in_register_mode(
    base_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.sipfix import in_threads

    from .test_sip_inbound import LINES

    need_peers("sipp", "kamailio")
    monkeypatch.setenv("IVR_SIP_PASSWORD", "secret")
    with Kamailio(workdir=tmp_path / "kam", ivr_user="12345", service_numbers=LINES) as kam:
        settings = sip_settings(
            base_settings,
            tmp_path,
            mode="register",
            registrar=f"{kam.host}:{kam.port}",
            username="12345",
            trunk_peers=[],
            short_prompts=True,
        )
        with running_ivr(settings, asr=False) as ivr:
            assert ivr.phone.registered.wait(30)
            assert kam.wait_registered("12345", timeout=30)

            def call(number: str, i: int):  # type: ignore[no-untyped-def]
                pcap = caller_pcap(settings, tmp_path, number, digit=str(i % 5 + 1), n=i + 1)
                return run_sipp(
                    "uac_call",
                    kam.address,
                    service=number,
                    keys={"caller": "13800138000"},
                    media={"media.pcap": pcap},
                    timeout=150,
                    recv_timeout=140,
                )

            results = in_threads([lambda n=n, i=i: call(n, i) for i, n in enumerate(LINES)])
            ivr.wait_idle()
            rows = ivr.rows()
    for number, r in zip(LINES, results, strict=True):
        assert r.ok and r.received("BYE"), f"{number}: {r.describe()}"
    assert sorted(c.line_number for c in rows["calls"]) == sorted(LINES)
    categories = {t.line_number: t.category for t in rows["tickets"]}
    expected = ["咨询", "投诉", "求助", "建议", "举报"]
    assert categories == {n: expected[i % 5] for i, n in enumerate(LINES)}
