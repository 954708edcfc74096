"""The HTTP face of hotline-ivr: one Flask app (factory) with its blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.routing import IntegerConverter

from ivr import __version__
from ivr.app import Hotline
from ivr.jobs import DramatiqJobs, open_jobs
from ivr.queries.tickets import MAX_ID


class RowId(IntegerConverter):
    """`int` in routes: at most MAX_ID unless the route says otherwise."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_app(hotline: Hotline, jobs: DramatiqJobs | None = None) -> Flask:
    """The app; `jobs` is the process's job queue (default: one from the `jobs:` config)."""
    from webhooks.api import init_api
    from webhooks.console import init_console
    from webhooks.observability import init_observability
    from webhooks.security_headers import init_security_headers
    from webhooks.twilio.voice import init_twilio

    jobs = jobs or open_jobs(hotline.settings)
    app = Flask(__name__)
    # Every <int:...> in a route is a row id: one beyond what the database stores is a
    # 404, never an overflow (99999999999999999999 made SQLite and PostgreSQL raise).
    app.url_map.converters["int"] = RowId
    app.extensions["hotline"] = hotline
    app.extensions["jobs"] = jobs
    init_observability(app, hotline, jobs)
    hops = hotline.settings.http.proxy_hops
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok", version=__version__)

    init_security_headers(app)
    init_twilio(app, hotline, jobs)
    init_api(app)
    init_console(app)
    return app
