"""The HTTP face of hotline-ivr: one Flask app (factory) with its blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from ivr import __version__
from ivr.app import Hotline


def create_app(hotline: Hotline) -> Flask:
    from webhooks.api import init_api
    from webhooks.console import init_console
    from webhooks.twilio_voice import init_twilio

    app = Flask(__name__)
    app.extensions["hotline"] = hotline

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok", version=__version__)

    init_twilio(app, hotline)
    init_api(app)
    init_console(app)
    return app
