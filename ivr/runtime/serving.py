"""HTTP servers for `ivr serve`: waitress in the all-in-one process, gunicorn for role web."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.app import Hotline
    from ivr.config import Settings
    from ivr.jobs import DramatiqJobs

log = logging.getLogger(__name__)


MAX_REQUEST_BODY = 2 * 1024 * 1024

# The proxy headers the app rebuilds Twilio's signed URL (and the client address) from.
PROXY_HEADERS = frozenset({"x-forwarded-proto", "x-forwarded-host", "x-forwarded-for"})


def forwarded_allow_ips() -> str:
    """The address(es) the reverse proxy connects from (gunicorn's forwarded_allow_ips)."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def waitress_proxy_options(settings: Settings) -> dict[str, Any]:
    """waitress's proxy trust from `http.proxy_hops`, matching gunicorn's.

    By default waitress clears X-Forwarded-* from peers it does not trust, so the
    app's ProxyFix never sees X-Forwarded-Proto and every Twilio signature (made
    over https://...) fails. waitress trusts one address or "*".
    """
    hops = settings.http.proxy_hops
    if not hops:
        return {}
    allowed = [a.strip() for a in forwarded_allow_ips().split(",") if a.strip()]
    trusted = allowed[0] if len(allowed) == 1 else "*"
    return {
        "trusted_proxy": trusted,
        "trusted_proxy_count": hops,
        "trusted_proxy_headers": set(PROXY_HEADERS),
        "clear_untrusted_proxy_headers": True,
    }


def serve_waitress(app: Hotline, jobs: DramatiqJobs, host: str, port: int) -> None:
    from waitress import serve

    from ivr.runtime.warm import ready_worker
    from webhooks import create_app

    log.info("hotline-ivr serving on http://%s:%d", host, port)
    options = waitress_proxy_options(app.settings)
    # waitress reads a whole body (chunked too) before the app runs: refuse a large one
    # with 413 while it arrives (the size nginx allows, deploy/nginx).
    options["max_request_body_size"] = MAX_REQUEST_BODY
    wsgi = create_app(app, jobs)
    ready_worker(app, jobs)
    serve(wsgi, host=host, port=port, threads=8, **options)


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT (systemd stop, Ctrl-C)."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def metrics_dir(settings: Settings) -> Path:
    """PROMETHEUS_MULTIPROC_DIR for gunicorn's workers; files of dead processes removed."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(given) if given else settings.storage_path / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    for f in path.glob("*.db"):
        pid = f.stem.rpartition("_")[2]
        if not (pid.isdigit() and _alive(int(pid))):
            f.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve_gunicorn(
    settings: Settings, config_path: str | None, host: str, port: int, workers: int
) -> None:
    """gunicorn with `workers` processes on webhooks.wsgi:app (blocks until stopped)."""
    from gunicorn.app.base import BaseApplication

    if config_path:
        os.environ["IVR_CONFIG"] = str(Path(config_path).resolve())
    os.environ.setdefault("DATABASE_URL", settings.resolved_database_url)
    metrics_dir(settings)

    def post_fork(_server: Any, _worker: Any) -> None:
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # file-backed in every worker

    def child_exit(_server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 60,
        "forwarded_allow_ips": forwarded_allow_ips(),
        "post_fork": post_fork,
        "child_exit": child_exit,
        "accesslog": None,
    }

    class App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from webhooks.wsgi import app

            return app

    log.info("serving HTTP with gunicorn (%d workers) on http://%s:%d", workers, host, port)
    App().run()
