"""WSGI entry for a production server: `gunicorn -w 2 'webhooks.wsgi:app'`.

Reads config.yaml (or IVR_CONFIG) and DATABASE_URL from the environment; the
database must be up to date (`ivr db upgrade`).
"""

from __future__ import annotations

from ivr import logs
from ivr.app import Hotline
from ivr.config import load_config
from webhooks import create_app

logs.setup("INFO")
hotline = Hotline.open(load_config())
app = create_app(hotline)
