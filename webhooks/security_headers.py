"""Security headers on every response of the app (deploy/nginx sets the same ones).

The console loads scripts only from itself; the report charts are inline SVG whose
styling matplotlib writes as style attributes, hence 'unsafe-inline' for styles
(never for scripts). No page may be framed (clickjacking); no type sniffing; no
full URL (with ticket ids in it) sent to other sites as a Referer.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"


def init_security_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(resp: Response) -> Response:
        for name, value in HEADERS.items():
            resp.headers.setdefault(name, value)
        if request.is_secure:  # over TLS (directly or as the trusted proxy says)
            resp.headers.setdefault("Strict-Transport-Security", HSTS)
        return resp
