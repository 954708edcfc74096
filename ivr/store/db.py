"""Engines and sessions; schema changes go through Alembic (`ivr db upgrade`)."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BEGIN = "ivr_sqlite_begin"
SQLITE_BUSY_TIMEOUT_S = 30
# SQLite's own busy handler sleeps longer and longer between tries (25-50 ms after the
# first 60 ms, 100 ms after 0.2 s), so a webhook waiting for the write lock slept on
# long after it was free (the SQLite tail of bench/twilio_webhooks). Write units poll
# for it every few milliseconds instead.
WRITE_LOCK_POLLS_S = (0.0005, 0.001, 0.002, 0.004)


_waited = threading.local()


def write_lock_wait_s() -> float:
    """Seconds this thread has waited so far for SQLite's write lock (BEGIN IMMEDIATE)."""
    return float(getattr(_waited, "s", 0.0))


class SchemaNotReady(RuntimeError):
    pass


class NestedWriteUnit(RuntimeError):
    """A write unit opened inside another on the same thread: on SQLite it would wait
    for the write lock its own thread holds, then fail with "database is locked"."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # pysqlite's legacy mode runs SELECTs outside any transaction and opens one
            # only at the first write; SQLAlchemy emits BEGIN itself instead (the
            # documented pysqlite recipe), so a unit of work is one real transaction.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Write units take the database's write lock at BEGIN (IMMEDIATE): two of
            # them serialize like PostgreSQL's row locks, instead of both reading a row
            # and one failing with "database is locked" when it upgrades to write.
            mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
            if mode != "IMMEDIATE":
                conn.exec_driver_sql(f"BEGIN {mode}")
                return
            started = time.perf_counter()
            if not _poll_write_lock(conn.connection.dbapi_connection):
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the last try, SQLite's own wait
            _waited.s = write_lock_wait_s() + time.perf_counter() - started

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _poll_write_lock(raw: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE, tried every few ms for up to the busy timeout; False if it never
    got the lock."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        for attempt in itertools.count():
            try:
                raw.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            if time.monotonic() > deadline:
                return False
            time.sleep(WRITE_LOCK_POLLS_S[min(attempt, len(WRITE_LOCK_POLLS_S) - 1)])
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    return False


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


class Database:
    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        writer = self.engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        self.sessions = sessionmaker(writer, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._open_units = threading.local()

    def check_schema(self) -> None:
        """Refuse to run on a database that `ivr db upgrade` has not brought up to date."""
        have, want = current_revision(self.engine), head_revision(self.url)
        if have != want:
            raise SchemaNotReady(
                f"database schema is at {have or 'nothing'}, code needs {want}: "
                "run `ivr db upgrade`"
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work that may write: committed on success, rolled back on error.

        On SQLite it holds the write lock from its first statement (BEGIN IMMEDIATE),
        so read-check-write sequences never interleave; on PostgreSQL lock the rows
        you change (`with_for_update()`).
        """
        if self._sqlite and getattr(self._open_units, "depth", 0):
            raise NestedWriteUnit("a write unit of work is already open on this thread")
        self._open_units.depth = getattr(self._open_units, "depth", 0) + 1
        try:
            with self.sessions() as s, s.begin():
                yield s
        finally:
            self._open_units.depth -= 1

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (one consistent snapshot, no write lock on SQLite)."""
        with self.read_sessions() as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
