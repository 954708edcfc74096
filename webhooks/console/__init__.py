"""The operator console (话务员工作台): server-rendered pages for reviewing drafts,
watching the queue live, campaigns and reports. Mounted under /console."""

from __future__ import annotations

import threading

from flask import Blueprint, Flask, redirect, url_for
from werkzeug.wrappers import Response

from webhooks.console.errors import init_errors
from webhooks.console.secret import secret_key

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def init_console(app: Flask) -> None:
    from webhooks.console import (  # noqa: F401  (the views register themselves)
        audit_log,
        auth,
        campaigns,
        history,
        kb,
        loop,
        queue,
        reports,
        review,
        users,
    )

    hotline = app.extensions["hotline"]
    if not app.secret_key:
        app.secret_key = secret_key(hotline.settings)
    public = hotline.settings.http.public_base_url or ""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=public.startswith("https://"),
    )
    app.session_interface = auth.TlsAwareSessions()
    # Live queue streams this process holds open at once (each holds a server thread).
    app.extensions["console_streams"] = threading.BoundedSemaphore(
        hotline.settings.console.streams_per_process
    )
    app.register_blueprint(bp)
    init_errors(app)

    @app.get("/")
    def _root() -> Response:
        return redirect(url_for("console.queue"))
