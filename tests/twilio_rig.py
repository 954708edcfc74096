"""The Flask app wired to a fake Twilio (harness.twiliokit): one object per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from harness.twiliokit.driver import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE,
    FlaskTransport,
    TwilioDriver,
)
from harness.twiliokit.fake_api import FakeTwilioApi
from ivr.app import Hotline
from ivr.store import Call, CallEvent, Recording, Ticket, Transcript
from ivr.tickets import to_dict
from ivr.transports.twilio.credentials import ACCOUNT_SID_ENV, AUTH_TOKEN_ENV
from webhooks import create_app
from webhooks.twilio.voice import TwilioVoice

CALLER_ID = "+8687112345"


@dataclass
class Rig:
    hotline: Hotline
    app: Flask
    api: FakeTwilioApi
    driver: TwilioDriver

    @property
    def voice(self) -> TwilioVoice:
        voice: TwilioVoice = self.app.extensions["twilio"]
        return voice

    def wait_jobs(self, timeout: float = 120) -> None:
        assert self.voice.jobs.wait_idle(timeout), "jobs did not finish in time"

    def counts(self) -> dict[str, int]:
        with self.hotline.db.session() as s:
            return {
                m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (Call, CallEvent, Recording, Transcript, Ticket)
            }

    def call(self, sid: str) -> Call:
        with self.hotline.db.session() as s:
            call = s.scalars(select(Call).where(Call.provider_call_id == sid)).one()
            s.expunge(call)
            return call

    def ticket(self, sid: str) -> dict[str, Any] | None:
        with self.hotline.db.session() as s:
            ticket = s.scalars(
                select(Ticket)
                .join(Call, Ticket.call_id == Call.id)
                .where(Call.provider_call_id == sid)
            ).first()
            return to_dict(ticket) if ticket else None

    def recordings(self, sid: str) -> list[Recording]:
        with self.hotline.db.session() as s:
            rows = list(
                s.scalars(
                    select(Recording)
                    .join(Call, Recording.call_id == Call.id)
                    .where(Call.provider_call_id == sid)
                )
            )
            for r in rows:
                _ = r.transcript
            s.expunge_all()
            return rows


@contextmanager
def twilio_rig(
    hotline: Hotline,
    monkeypatch: pytest.MonkeyPatch,
    *,
    public_base: str | None = PUBLIC_BASE,
    voice: str = "play",
    asr_model: str | None = None,
    seen_as: str = "http://127.0.0.1:8080",
) -> Iterator[Rig]:
    monkeypatch.setenv(ACCOUNT_SID_ENV, ACCOUNT_SID)
    monkeypatch.setenv(AUTH_TOKEN_ENV, AUTH_TOKEN)
    api = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).start()
    s = hotline.settings
    update: dict[str, Any] = {
        "http": s.http.model_copy(update={"public_base_url": public_base}),
        "twilio": s.twilio.model_copy(
            update={
                "api_base_url": api.base_url,
                "caller_id": CALLER_ID,
                "voice": voice,
                "api_backoff_s": 0.01,
            }
        ),
    }
    if asr_model:
        update["asr"] = s.asr.model_copy(update={"model": asr_model})
    hotline.settings = s.model_copy(update=update)
    app = create_app(hotline)
    driver = TwilioDriver(FlaskTransport(app, seen_as), api, public_base=public_base or seen_as)
    rig = Rig(hotline, app, api, driver)
    try:
        yield rig
    finally:
        rig.voice.jobs.close(wait=True, timeout=60)
        api.stop()
