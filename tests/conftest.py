"""Shared fixtures: the real config on a throwaway database, a fixed clock, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.sipfix import MissingPeer
from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import Settings, load_config
from ivr.store import upgrade

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_config(ROOT / "config.yaml", env={})


def settings_for(base: Settings, tmp: Path, database_url: str | None = None) -> Settings:
    return base.model_copy(
        update={
            "storage_dir": tmp / "var",
            "database_url": database_url or f"sqlite:///{tmp / 'ivr.sqlite3'}",
        }
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgres"),
        default=os.environ.get("IVR_TEST_DATABASE", "sqlite"),
        help="database of the `settings`/`hotline` fixtures: a temporary SQLite file "
        "(default) or a temporary PostgreSQL database (also IVR_TEST_DATABASE=postgres)",
    )


@pytest.fixture
def settings(base_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if request.config.getoption("--db") == "postgres":
        return settings_for(base_settings, tmp_path, request.getfixturevalue("postgres_url"))
    return settings_for(base_settings, tmp_path)


@pytest.fixture
def clock() -> FixedClock:
    # Monday 2026-11-23 10:00 in Shanghai.
    return FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))


@pytest.fixture
def hotline(settings: Settings, clock: FixedClock) -> Iterator[Hotline]:
    upgrade(settings.resolved_database_url)
    app = Hotline.open(settings, clock)
    yield app
    app.close()


def _admin_url() -> str:
    return POSTGRES_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}")
    name = f"ivr_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


REDIS_URL = os.environ.get("IVR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A Redis key prefix of one test's own; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    ns = f"ivrtest-{uuid.uuid4().hex[:10]}"
    try:
        yield ns
    finally:
        keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    except MissingPeer as exc:
        pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    except MissingPeer as exc:
        pytest.skip(str(exc))
