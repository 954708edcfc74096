"""WSGI entry for a production server: `ivr serve --role web` or `gunicorn 'webhooks.wsgi:app'`.

Reads config.yaml (or IVR_CONFIG), DATABASE_URL and REDIS_URL from the
environment; the database must be up to date (`ivr db upgrade`). With Redis,
recording jobs go to the worker processes; without, each web worker runs them.
"""

from __future__ import annotations

from ivr.app import Hotline
from ivr.config import load_config
from ivr.runtime import logs
from ivr.runtime.warm import ready_worker
from webhooks import create_app

settings = load_config()
logs.setup(settings.logging.level, settings.logging.format)
hotline = Hotline.open(settings)
app = create_app(hotline)
# Before the first request: lazy loads done, the heap frozen, the job worker started.
ready_worker(hotline, app.extensions["jobs"])
