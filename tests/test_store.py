"""Migrations on SQLite and PostgreSQL, and the storage rules the rest relies on."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, select
from sqlalchemy.exc import OperationalError

from ivr.cli import main
from ivr.store import Base, Database, SchemaNotReady, upgrade
from ivr.store import db as db_module
from ivr.store.models import Call
from ivr.tickets import next_ticket_number

from .conftest import ROOT

TABLES = {
    "calls",
    "call_events",
    "recordings",
    "transcripts",
    "tickets",
    "ticket_sequences",
    "campaigns",
    "survey_attempts",
    "alembic_version",
}


def _modelled(name: str | None, kind: str, parent: object) -> bool:
    # The knowledge base's full-text index is made by its migration, not by a model.
    return not (name or "").startswith(("kb_fts", "ix_kb_articles_terms_fts", "terms_tsv"))


def check_schema_matches_models(url: str) -> None:
    db = Database(url)
    try:
        assert set(inspect(db.engine).get_table_names()) >= TABLES
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _modelled})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        db.check_schema()
    finally:
        db.dispose()


@pytest.mark.db  # its own database, not the `settings` fixture
def test_migrations_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    upgrade(url)
    check_schema_matches_models(url)
    upgrade(url)  # running it again is harmless


@pytest.mark.postgres
def test_migrations_on_postgres(postgres_url: str) -> None:
    upgrade(postgres_url)
    check_schema_matches_models(postgres_url)
    upgrade(postgres_url)


@pytest.mark.db  # its own database, not the `settings` fixture
def test_service_refuses_unmigrated_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(SchemaNotReady, match="run `ivr db upgrade`"):
        db.check_schema()
    db.dispose()


@pytest.mark.db  # its own database, not the `settings` fixture
def test_cli_db_upgrade_uses_database_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    result = CliRunner().invoke(
        main, ["--config", str(ROOT / "config.yaml"), "db", "upgrade"], env={"DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    check_schema_matches_models(url)


@pytest.mark.db  # its own database, not the `settings` fixture
def test_timestamps_come_back_as_utc(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.sqlite3'}"
    upgrade(url)
    db = Database(url)
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    with db.session() as s:
        s.add(
            Call(
                provider="sim",
                provider_call_id="a",
                direction="inbound",
                flow="inbound",
                line_number="12345",
                line_source="dialed",
                flow_state={},
                started_at=at,
            )
        )
    with db.session() as s:
        call = s.scalars(select(Call)).one()
        assert call.started_at == at and call.started_at.tzinfo is not None
    db.dispose()


def _numbers_from_threads(url: str, threads: int, each: int) -> list[str]:
    db = Database(url)
    out: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            with db.session() as s:
                n = next_ticket_number(s, "12345", date(2026, 11, 22))
            with lock:
                out.append(n)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    db.dispose()
    return out


@pytest.mark.db  # its own database, not the `settings` fixture
def test_ticket_numbers_are_daily_sequences(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.sqlite3'}"
    upgrade(url)
    db = Database(url)
    with db.session() as s:
        assert next_ticket_number(s, "12345", date(2026, 11, 22)) == "12345-20261122-00001"
        assert next_ticket_number(s, "12345", date(2026, 11, 22)) == "12345-20261122-00002"
        assert next_ticket_number(s, "12345", date(2026, 11, 23)) == "12345-20261123-00001"
    db.dispose()


@pytest.mark.postgres
def test_ticket_numbers_unique_under_concurrent_writers(postgres_url: str) -> None:
    upgrade(postgres_url)
    numbers = _numbers_from_threads(postgres_url, threads=8, each=25)
    assert len(numbers) == len(set(numbers)) == 200
    assert max(numbers) == "12345-20261122-00200"


@pytest.mark.db  # its own database, not the `settings` fixture
def test_ticket_numbers_unique_under_concurrent_writers_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    upgrade(url)
    numbers = _numbers_from_threads(url, threads=4, each=25)
    assert len(numbers) == len(set(numbers)) == 100


@pytest.mark.db  # its own database, not the `settings` fixture
def test_a_write_unit_waits_for_the_write_lock_then_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite3'}"
    upgrade(url)
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    holder, waiter = Database(url), Database(url)
    taken, freed, got = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with holder.session() as s:
            s.execute(select(Call.id)).all()
            taken.set()
            freed.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert taken.wait(30)
        with pytest.raises(OperationalError, match="locked"), waiter.session() as s:
            s.execute(select(Call.id)).all()

        def wait_then_write() -> None:
            monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 30)
            with waiter.session() as s:
                s.execute(select(Call.id)).all()
            got.set()

        w = threading.Thread(target=wait_then_write)
        w.start()
        assert not got.wait(0.2)  # still waiting for the holder
    finally:
        freed.set()
        t.join(30)
    w.join(30)
    assert got.is_set()  # took the lock once it was free
    holder.dispose()
    waiter.dispose()
