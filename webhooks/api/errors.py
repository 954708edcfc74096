"""One error body for the whole JSON API: {"error": {"code", "message"[, "details"]}}.

Handlers are registered for the /api prefix only: errors raised inside the API
blueprint go through the blueprint's handlers, and routing errors (unknown
path, wrong method) under /api/ are answered by a check that runs before
dispatch, so the Twilio blueprint and the console keep their own error pages.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ivr.services import ServiceError

log = logging.getLogger("webhooks.api")

PREFIX = "/api/"

# HTTP status -> the machine-readable code used when nothing more specific applies.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    500: "internal_error",
}


class ApiError(Exception):
    """An error the API reports to its caller as it is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.details = details


# A refused service call -> the HTTP status it is answered with (its code is kept).
SERVICE_STATUS: dict[str, int] = {
    "not_found": 404,
    "illegal_transition": 409,
    "conflict": 409,
    "invalid": 422,
}


def from_service(exc: ServiceError) -> ApiError:
    status = SERVICE_STATUS.get(exc.code, 400)
    code = "validation_failed" if exc.code == "invalid" else exc.code
    return ApiError(status, exc.message, code=code)


def error_response(err: ApiError) -> Response:
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.details is not None:
        body["details"] = err.details
    resp = jsonify(error=body)
    resp.status_code = err.status
    if err.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="hotline-ivr"'
    return resp


def http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = exc.description or exc.name
    resp = error_response(ApiError(status, message))
    for name, value in exc.get_headers():
        if name.lower() == "allow":  # 405 says which methods the path has
            resp.headers["Allow"] = value
    return resp


def routing_error() -> Response | None:
    """Unknown /api/ paths and wrong methods, before Flask dispatches them."""
    exc = request.routing_exception
    if exc is None or not (request.path + "/").startswith(PREFIX):
        return None
    if isinstance(exc, HTTPException) and (exc.code or 500) >= 400:
        return http_error(exc)
    return None  # a redirect to the canonical URL (RequestRedirect) goes out as it is


def unexpected(exc: Exception) -> Response:
    log.exception("API %s %s failed", request.method, request.path)
    return error_response(ApiError(500, "internal error; it has been logged"))
