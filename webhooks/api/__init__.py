"""The JSON API for the province/city ticket platform, under /api (see openapi.py)."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from webhooks.api import campaigns, kb, lifecycle, reports, tickets
from webhooks.api.errors import routing_error
from webhooks.api.openapi import document
from webhooks.api.unit import bp, hotline

__all__ = ["campaigns", "init_api", "kb", "lifecycle", "reports", "tickets"]


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """The OpenAPI document; public, like any API reference."""
    return jsonify(document(hotline().settings))


def init_api(app: Flask) -> None:
    app.before_request(routing_error)
    app.register_blueprint(bp)
