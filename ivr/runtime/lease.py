"""A lease that one process at a time holds: the active campaign scheduler; or, shared,
that any number hold: a SIP node's presence (ivr.runtime.presence).

PostgreSQL: a session advisory lock on a connection kept open for it. The
server drops it the moment the holder's connection goes away, so a scheduler
killed with -9 hands over at the next try of another one, with no timeout to
wait out. SQLite (one machine): an exclusive flock on a file beside the
database, which the kernel drops with the process. A shared lease is the shared
form of either (`pg_try_advisory_lock_shared`, LOCK_SH): the exclusive form is
refused while any process holds it shared.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import zlib
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from ivr.store import Database

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, db: Database, name: str, lock_dir: Path, *, shared: bool = False) -> None:
        self.db, self.name, self.shared = db, name, shared
        self.key = zlib.crc32(f"hotline-ivr:{name}".encode())
        self.lock_path = lock_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def try_acquire(self) -> bool:
        """True while this process holds the lease (taking it when free)."""
        if self.db.engine.dialect.name == "postgresql":
            return self._pg()
        return self._flock()

    def _pg(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("select 1"))
                return True
            except DBAPIError:
                log.error("lease %s lost: its database connection broke", self.name)
                self._drop_conn()
        conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(
                conn.scalar(text(f"select {self._pg_fn('try_advisory_lock')}(:k)"), {"k": self.key})
            )
        except DBAPIError:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        log.info("lease %s taken by pid %d", self.name, os.getpid())
        return True

    def _flock(self) -> bool:
        if self._file is not None:
            return True
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        f = self.lock_path.open("ab")
        try:
            fcntl.flock(
                f.fileno(), (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
            )
        except BlockingIOError:
            f.close()
            return False
        self._file = f
        log.info("lease %s taken by pid %d", self.name, os.getpid())
        return True

    def _pg_fn(self, name: str) -> str:
        return f"pg_{name}_shared" if self.shared else f"pg_{name}"

    def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.close()

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.execute(
                    text(f"select {self._pg_fn('advisory_unlock')}(:k)"), {"k": self.key}
                )
            self._drop_conn()
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
