"""Migrated databases for tests, copied from a template instead of migrated each time.

Running the Alembic migrations takes ~0.4 s on SQLite and ~1.5 s (plus create/drop)
on PostgreSQL; a test suite with hundreds of database tests spends minutes on it.
A copy of a database migrated once per process takes milliseconds: a file copy on
SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL. The migrations themselves stay
tested where a test runs `ivr.store.upgrade` on purpose (tests/test_store.py).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ivr.store import upgrade


class SchemaCopies:
    def __init__(self, workdir: Path, admin_url: str) -> None:
        self._workdir = workdir
        self._admin_url = admin_url
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._fresh_pg: set[str] = set()

    def fresh_postgres(self, name: str) -> None:
        """Note a database just created empty: `migrate` may replace it by a copy."""
        self._fresh_pg.add(name)

    def migrate(self, url: str) -> None:
        """Bring the database at `url` to the head revision, by copy when it is new."""
        parsed = make_url(url)
        database = parsed.database or ""
        if parsed.get_backend_name() == "sqlite" and database and not Path(database).exists():
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._sqlite(), database)
        elif parsed.get_backend_name() == "postgresql" and database in self._fresh_pg:
            self._fresh_pg.discard(database)
            template = self._postgres(parsed.set(database=database).render_as_string(False))
            self._admin(
                f'DROP DATABASE IF EXISTS "{database}"',
                f'CREATE DATABASE "{database}" TEMPLATE "{template}"',
            )
        else:
            upgrade(url)

    def close(self) -> None:
        if self._pg_template:
            self._admin(f'DROP DATABASE IF EXISTS "{self._pg_template}" WITH (FORCE)')

    def _sqlite(self) -> Path:
        if self._sqlite_template is None:
            path = self._workdir / "template.sqlite3"
            upgrade(f"sqlite:///{path}")
            self._sqlite_template = path
        return self._sqlite_template

    def _postgres(self, like_url: str) -> str:
        if self._pg_template is None:
            name = f"ivr_template_{uuid.uuid4().hex[:12]}"
            self._admin(f'CREATE DATABASE "{name}"')
            upgrade(make_url(like_url).set(database=name).render_as_string(False))
            self._pg_template = name
        return self._pg_template

    def _admin(self, *statements: str) -> None:
        engine = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()
