"""What one `ivr serve` process runs: `--role web|sip|worker|scheduler|all` (or a list).

    web        the HTTP app (gunicorn when alone, waitress inside `all`)
    sip        the SIP phone: inbound calls
    worker     runs jobs: transcription, recording fetches, survey calls (with a dialer)
    scheduler  queues due survey calls while it holds the scheduler lease
    all        everything in one process: the embedded default

Roles combine: `--role sip,worker` is a SIP node that also dials survey calls
through its own phone. Without a Redis broker, jobs run in the process that
submits them, so only `all` (or a list holding every role you need) makes sense.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.runtime.lease import Lease

if TYPE_CHECKING:
    from collections.abc import Callable

    from ivr.app import Hotline
    from ivr.jobs import DramatiqJobs
    from ivr.runtime.open_calls import OpenCallCheck
    from ivr.surveys.dialer import Dialer
    from ivr.surveys.scheduler import DispatchScheduler

log = logging.getLogger(__name__)

ROLES = ("web", "sip", "worker", "scheduler")


class RoleError(ValueError):
    pass


def parse_roles(value: str) -> frozenset[str]:
    names = {v.strip() for v in value.split(",") if v.strip()}
    if "all" in names:
        return frozenset(ROLES)
    unknown = names - set(ROLES)
    if unknown or not names:
        raise RoleError(
            f"unknown role(s) {', '.join(sorted(unknown)) or '(none)'}: "
            f"choose from {', '.join((*ROLES, 'all'))}, comma-separated"
        )
    return frozenset(names)


@dataclass
class Node:
    """The non-HTTP parts of a process: SIP phone, job worker, scheduler."""

    app: Hotline
    roles: frozenset[str]
    explicit: bool = False  # roles named on the command line, not `all`
    dialer: Dialer | None = None
    jobs: DramatiqJobs = field(init=False)
    phone: Any = None
    scheduler: DispatchScheduler | None = None

    def start(self) -> Node:
        # Imported here: `ivr serve --role web` must not load the metrics before
        # gunicorn's PROMETHEUS_MULTIPROC_DIR is set.
        from ivr.jobs import open_jobs
        from ivr.jobs.registry import register_jobs
        from ivr.surveys.scheduler import DispatchScheduler

        settings = self.app.settings
        self.jobs = open_jobs(settings)
        if self.jobs.embedded and self.explicit and self.roles != frozenset(ROLES):
            log.warning(
                "no jobs.broker_url (REDIS_URL): jobs run only in this process, roles %s",
                ",".join(sorted(self.roles)),
            )
        if "sip" in self.roles:
            if settings.sip.enabled:
                from ivr.transports.sip.service import build_phone

                self.phone = build_phone(self.app)  # started once its crashed calls are closed
            elif self.explicit:
                raise RoleError("role sip: sip.enabled is false in the config")
        dialer = self.dialer
        if "worker" in self.roles:
            from ivr.transports.twilio.reconcile import reconcile_twilio_calls

            dialer = dialer or self._dialer()
            intake = register_jobs(self.app, self.jobs, dialer)
            if not self.jobs.embedded:
                self.jobs.start_worker()
            # In the background: closing calls left open asks the REST API about each one
            # (up to MAX_LOOKUPS round trips), which must not hold up the worker's start.
            threading.Thread(
                target=self._reconcile_twilio,
                args=(reconcile_twilio_calls, intake),
                daemon=True,
                name="twilio-reconcile",
            ).start()
            log.info("worker: running jobs%s", " and survey calls" if dialer else "")
        else:
            register_jobs(self.app, self.jobs)
        if "sip" in self.roles and self.phone is not None:
            self._close_interrupted_calls()
            self.phone.start()
        if "scheduler" in self.roles and (dialer is not None or not self.jobs.embedded):
            lease = Lease(self.app.db, "scheduler", settings.storage_path)
            self.scheduler = DispatchScheduler(
                self.app,
                self.jobs,
                lease,
                settings.jobs.schedule_interval_s,
                open_calls=self._open_call_check(),
            )
            self.scheduler.start()
            log.info("scheduler: started (active while it holds the lease)")
        return self

    def _transcribe(self, recording_id: int) -> None:
        from ivr.calls.transcription import TRANSCRIBE_JOB

        self.jobs.submit(
            TRANSCRIBE_JOB, {"recording_id": recording_id}, key=f"transcribe:{recording_id}"
        )

    def _close_interrupted_calls(self) -> None:
        """Calls this SIP node left open when its last process died: closed, their
        statements stored and drafted (before the phone takes new calls)."""
        from ivr.transports.sip.recovery import close_interrupted_calls

        close_interrupted_calls(self.app, self.phone.node, self._transcribe)

    def _open_call_check(self) -> Callable[[], OpenCallCheck]:
        """The scheduler's periodic check: calls of dead SIP nodes and Twilio calls
        that ended unnoticed, closed as at start-up."""
        from ivr.runtime.open_calls import check_open_calls

        calls, client = self._twilio_rest()
        return lambda: check_open_calls(self.app, self._transcribe, calls, client)

    def _reconcile_twilio(self, reconcile: Any, intake: Any) -> None:
        try:
            done = reconcile(intake, *self._twilio_rest())
            log.info("twilio: %s", done)
        except Exception:
            log.exception("twilio: reconciling at start-up failed")

    def _twilio_rest(self) -> tuple[Any, Any]:
        """The Twilio call service and REST client for reconciling open calls; (None,
        None) without Twilio credentials."""
        from ivr.transports.twilio.credentials import Credentials
        from ivr.transports.twilio.dialer import rest_client
        from ivr.transports.twilio.steps import TwilioCalls
        from ivr.transports.twilio.twiml import TwimlRenderer

        creds = Credentials.from_env()
        if not (creds.account_sid and creds.auth_token):
            return None, None
        cfg = self.app.settings.twilio
        calls = TwilioCalls(self.app, TwimlRenderer(cfg, None))
        return calls, rest_client(cfg, creds.account_sid, creds.auth_token)

    def _dialer(self) -> Dialer | None:
        settings = self.app.settings
        if settings.surveys.dialer == "twilio":
            from ivr.transports.twilio.dialer import DialerError, TwilioDialer

            try:
                return TwilioDialer.from_settings(self.app)
            except DialerError as exc:
                log.error("no survey calls from this worker: %s", exc)
                return None
        if self.phone is None and self.explicit and settings.sip.enabled:
            from ivr.transports.sip.service import build_phone

            self.phone = build_phone(self.app, load_asr=False, dialer=True)
            self.phone.start()
        if self.phone is None:
            return None
        from ivr.transports.sip.dialer import SipDialer

        return SipDialer(self.phone)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.jobs.close(wait=False, timeout=10)
        if self.phone is not None:
            self.phone.stop()
