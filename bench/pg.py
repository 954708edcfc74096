"""A throwaway PostgreSQL database for one benchmark run."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def fresh_postgres(url: str) -> tuple[str, Callable[[], None]] | None:
    """(URL of a new empty database, a function that drops it), or None if unreachable."""
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"ivr_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"PostgreSQL not reachable ({type(exc).__name__}); skipped", file=sys.stderr)
        return None

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop
