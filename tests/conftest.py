"""Shared fixtures (the real config on a throwaway database, a fixed clock, PostgreSQL,
Redis) and the suite's rules: markers applied by what a test uses, the PostgreSQL
pass, and no unexpected skips in CI.

Markers (README "Tests"), applied at collection so a new test gets them without
remembering:
- `db`: touches a database: uses the `settings`, `hotline` or `postgres_url`
  fixture (directly or through another fixture), is marked `postgres`, or its
  module says `pytestmark = pytest.mark.db` (tests on a SQLite file of their own).
- `peer`: real peers in other processes (SIPp, Kamailio, baresip, Chromium,
  `ivr serve`, gunicorn, several IVR processes): the modules in PEER_MODULES.
- `unit`: neither.

`--db=postgres` reruns only what can change with the database: `-m db` tests, less
those pinned to PostgreSQL (marked `postgres` or using `postgres_url` directly),
which already ran on it in the default pass.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from harness.schema import SchemaCopies
from harness.sipfix import MissingPeer
from ivr.app import Hotline
from ivr.clock import FixedClock
from ivr.config import Settings, load_config

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


@pytest.fixture(scope="session")
def schema_copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchemaCopies]:
    copies = SchemaCopies(tmp_path_factory.mktemp("schema"), POSTGRES_URL)
    yield copies
    copies.close()


@pytest.fixture
def migrate(schema_copies: SchemaCopies) -> Callable[[str], None]:
    """Bring a test's database to the head revision (a copy of a migrated one if new)."""
    return schema_copies.migrate


@pytest.fixture
def hotline(
    settings: Settings, clock: FixedClock, migrate: Callable[[str], None]
) -> Iterator[Hotline]:
    migrate(settings.resolved_database_url)
    app = Hotline.open(settings, clock)
    yield app
    app.close()


def _admin_url() -> str:
    return POSTGRES_URL


@pytest.fixture
def postgres_url(schema_copies: SchemaCopies) -> Iterator[str]:
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
    schema_copies.fresh_postgres(name)
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
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    except MissingPeer as exc:
        pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    except MissingPeer as exc:
        pytest.skip(str(exc))


# Modules that drive real peers in other processes (see the module docstring).
PEER_MODULES = frozenset(
    {
        "test_console_browser",
        "test_privacy_browser",
        "test_console_loop_browser",
        "test_deploy",
        "test_scaleout",
        "test_serve",
        "test_sip_defects",
        "test_sip_inbound",
        "test_sip_outbound",
        "test_sip_peers",
        "test_sipkit",
        "test_survey_campaign_sip",
        "test_twilio_serving",
    }
)
DB_FIXTURES = frozenset({"settings", "hotline", "postgres_url"})
# In CI (CI=true) a skip is a failure unless its reason starts with one of these:
# the Mandarin accuracy tests need a model the CI machine cannot download, and the
# comparisons against the stdlib's audioop cannot run on Python 3.13, which removed it.
ALLOWED_SKIPS = ("no Mandarin model", "audioop was removed in Python 3.13")


def _pinned_to_postgres(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("postgres") is not None or (
        "postgres_url" in names and not names & {"settings", "hotline"}
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        names = set(getattr(item, "fixturenames", ()))
        if names & DB_FIXTURES or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.db)
        if module in PEER_MODULES or module.startswith("test_sip"):
            item.add_marker(pytest.mark.peer)
        if not (item.get_closest_marker("db") or item.get_closest_marker("peer")):
            item.add_marker(pytest.mark.unit)
    _costliest_modules_first(items)
    if config.getoption("--db") == "postgres":
        keep, pinned = [], []
        for item in items:
            (pinned if _pinned_to_postgres(item) else keep).append(item)
        if pinned:
            config.hook.pytest_deselected(items=pinned)
            items[:] = keep


DURATIONS = Path(__file__).with_name("durations.json")


def _costliest_modules_first(items: list[pytest.Item]) -> None:
    """Modules in the order of their measured cost (tests/durations.json, written by
    scripts/test_durations.py), each module's tests kept together and in order (module
    fixtures are built once). xdist's worksteal hands each worker a contiguous share and
    steals from the end of a queue: long modules first, the run ends on short tests on
    both workers. A module not in the file counts as cheap."""
    import json

    try:
        cost: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(item.nodeid.split("::", 1)[0], i)

    def key(pair: tuple[int, pytest.Item]) -> tuple[float, int, int]:
        i, item = pair
        path = item.nodeid.split("::", 1)[0]
        return (-cost.get(Path(path).stem, 0.0), first[path], i)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.skipped and _ci() and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not reason.startswith(ALLOWED_SKIPS):
            report.outcome = "failed"
            report.longrepr = (
                f"skipped in CI: {reason}\n(CI=true: only these skips are accepted: "
                f"{', '.join(ALLOWED_SKIPS)}; install what `make test` installs)"
            )
    return report
