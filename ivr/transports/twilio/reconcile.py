"""What a restart owes the Twilio calls a dead process (or a missing callback) left.

`reconcile_twilio_calls` runs at start-up on a node that runs jobs, and can be
called by the start-up reconciliation of ivr.calls:

- every recording still `fetching` (its callback arrived, its media was never
  stored) is fetched again by RecordingSid (`RecordingIntake.requeue_fetches`);
- every Twilio call still open after `twilio.max_call_s` (a caller who hung up in
  the menu on a number without a status callback, or a callback lost while the
  service was down) is asked of the REST API by CallSid; a call Twilio reports
  ended is closed as its status callback would have closed it (the flow's hang-up
  branch runs, so a statement already recorded still becomes a draft).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from ivr.store.models import Call
from ivr.transports.twilio import PROVIDER
from ivr.transports.twilio.steps import FINAL_STATUSES, StatusUpdate

if TYPE_CHECKING:
    from ivr.transports.twilio.media import RecordingIntake
    from ivr.transports.twilio.steps import TwilioCalls

log = logging.getLogger(__name__)

MAX_LOOKUPS = 200  # per start: a backlog is worked off over restarts, start-up stays short


@dataclass(frozen=True)
class TwilioReconciled:
    fetches_queued: int
    calls_closed: int = 0


def reconcile_twilio_calls(
    intake: RecordingIntake, calls: TwilioCalls | None = None, client: Any = None
) -> TwilioReconciled:
    """Re-fetch recordings left `fetching`; with a REST client, close calls left open."""
    fetches = intake.requeue_fetches()
    closed = close_open_calls(calls, client) if calls is not None and client is not None else 0
    return TwilioReconciled(fetches_queued=fetches, calls_closed=closed)


def close_open_calls(calls: TwilioCalls, client: Any, older_than_s: float | None = None) -> int:
    """Close the Twilio calls open longer than `older_than_s` (default twilio.max_call_s)
    that the REST API reports ended; how many were closed."""
    app = calls.app
    age = app.settings.twilio.max_call_s if older_than_s is None else older_than_s
    before = app.clock.now() - timedelta(seconds=age)
    with app.db.read() as s:
        sids = list(
            s.scalars(
                select(Call.provider_call_id).where(
                    Call.provider == PROVIDER, Call.ended_at.is_(None), Call.started_at <= before
                )
            )
        )
    closed = 0
    for sid in sids[:MAX_LOOKUPS]:
        try:
            remote = client.calls(sid).fetch()
        except TwilioRestException as exc:  # e.g. a call Twilio no longer knows
            log.warning("call %s/%s left open: REST lookup failed (%s)", PROVIDER, sid, exc)
            continue
        except requests.RequestException as exc:  # the API is unreachable: next start
            log.warning("calls left open not reconciled: Twilio API unreachable (%s)", exc)
            break
        status = str(remote.status)
        if status not in FINAL_STATUSES:
            continue
        duration = float(remote.duration) if remote.duration not in (None, "") else None
        calls.update_status(StatusUpdate(sid, status, duration_s=duration))
        log.info("call %s/%s left open was %s at Twilio: closed", PROVIDER, sid, status)
        closed += 1
    return closed
