"""Every Twilio webhook is signed: X-Twilio-Signature is checked before anything else.

The signature covers the URL Twilio requested, so behind a TLS-terminating proxy
(the app sees http://127.0.0.1:8080, Twilio called https://ivr.example.org) it is
checked against http.public_base_url + the path and query. Without an auth token
in the environment the endpoints answer 503; a missing or wrong signature is a
403 and a log line, and nothing is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Request, Response, current_app, request
from twilio.request_validator import RequestValidator

from ivr.calls.service import UnknownCall
from ivr.transports.twilio.credentials import AUTH_TOKEN_ENV, Credentials
from ivr.transports.twilio.steps import StepOutOfOrder
from webhooks.twilio.params import BadParams

log = logging.getLogger("webhooks.twilio")

SIGNATURE_HEADER = "X-Twilio-Signature"


def plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


def public_base(req: Request) -> str:
    """The URL of this app's root as Twilio reaches it."""
    configured = current_app.extensions["hotline"].settings.http.public_base_url
    if configured:
        return str(configured).rstrip("/")
    return (req.host_url.rstrip("/") + req.script_root).rstrip("/")


def public_url(req: Request) -> str:
    qs = req.query_string.decode("latin-1")
    return public_base(req) + req.path + (f"?{qs}" if qs else "")


def signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse unsigned and forged requests; turn bad parameters into a 400 with the reason."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        creds = Credentials.from_env()
        if not creds.auth_token:
            log.error("Twilio request to %s refused: %s is not set", request.path, AUTH_TOKEN_ENV)
            return plain(
                503,
                f"Twilio webhooks are not configured: set {AUTH_TOKEN_ENV} (and "
                "TWILIO_ACCOUNT_SID) in this server's environment",
            )
        url = public_url(request)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        call_sid = str(request.form.get("CallSid", ""))[:40]
        if not signature:
            log.warning(
                "403 %s from %s (CallSid %s): no %s header",
                request.path,
                request.remote_addr,
                call_sid or "-",
                SIGNATURE_HEADER,
            )
            return plain(403, f"missing {SIGNATURE_HEADER}")
        if not RequestValidator(creds.auth_token).validate(url, request.form, signature):
            log.warning(
                "403 %s from %s (CallSid %s): %s does not match %s",
                request.path,
                request.remote_addr,
                call_sid or "-",
                SIGNATURE_HEADER,
                url,
            )
            return plain(403, f"{SIGNATURE_HEADER} does not match this request")
        account = request.form.get("AccountSid")
        if creds.account_sid and account and account != creds.account_sid:
            log.warning("403 %s: AccountSid %s is not this account", request.path, account)
            return plain(403, "AccountSid is not this service's account")
        try:
            return view(*args, **kwargs)
        except BadParams as exc:
            log.warning("400 %s (CallSid %s): %s", request.path, call_sid or "-", exc)
            return plain(400, f"bad request: {exc}")
        except UnknownCall as exc:
            log.warning("404 %s: %s", request.path, exc)
            return plain(404, str(exc))
        except StepOutOfOrder as exc:
            log.warning("409 %s: %s", request.path, exc)
            return plain(409, str(exc))

    return wrapper
