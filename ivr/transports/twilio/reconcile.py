"""What a restart owes the Twilio calls a dead process left: their recordings.

`reconcile_twilio_calls` runs at start-up on a node that runs jobs (and can be
called by the start-up reconciliation of ivr.calls): every recording still
`fetching` (its callback arrived, its media was never stored) is fetched again
by RecordingSid. The rows are the durable part, so nothing depends on the
in-process queue surviving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.transports.twilio.media import RecordingIntake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwilioReconciled:
    fetches_queued: int


def reconcile_twilio_calls(intake: RecordingIntake) -> TwilioReconciled:
    return TwilioReconciled(fetches_queued=intake.requeue_fetches())
