"""Test fixtures: every database test runs on SQLite and, when EQIAN_TEST_PG_URL is set, on PostgreSQL.

The schema is built by the real Alembic migrations once per backend; each test starts from empty
tables. Under pytest-xdist every worker gets a PostgreSQL database of its own (the URL's name plus
the worker id), created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eqian.all_models import Base
from eqian.core.config import Settings
from eqian.core.db import make_engine, make_sessionmaker
from eqian.web.app import create_app
from tests.factories import audit_guard_lifted

ROOT = Path(__file__).resolve().parents[1]
# Hundreds of apps are built in one test process: freezing their objects out of the garbage
# collector would keep them all. Worker processes the tests start (tests/pg) turn it back on.
os.environ.setdefault("EQIAN_GC_FREEZE", "false")
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
if PG_URL and XDIST_WORKER:
    PG_URL = f"{PG_URL}_{XDIST_WORKER}"
# Development shortcut while a domain's models change faster than its migration: build the schema
# from the models. CI never sets it, so the migrations themselves stay under test.
SCHEMA_FROM_MODELS = os.environ.get("EQIAN_TEST_SCHEMA") == "create_all"
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
if os.environ.get("EQIAN_REQUIRE_PG") == "1" and not PG_URL:
    raise RuntimeError("EQIAN_REQUIRE_PG=1 but EQIAN_TEST_PG_URL is not set")

# Route coverage, OpenAPI validation of every response and the leak scan, over the whole run.
pytest_plugins = ["tests.security.observer"]


@contextmanager
def built_once(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """For a costly fixture whose result tests only read (a seeded demo district): one build per
    test run, however xdist spreads its tests over the workers.

    Yields the run-wide directory ``name`` and whether it still has to be built there; the build
    counts as done when the block ends without an error. A lock is held meanwhile, so a worker
    that arrives during the build waits for it (blocking its event loop, which has nothing else
    to run).
    """
    base = tmp_path_factory.getbasetemp()
    run = base.parent if XDIST_WORKER else base  # each worker's basetemp is a child of the run's
    directory, done = run / name, run / f"{name}.done"
    with (run / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if done.exists():
                yield directory, False
                return
            directory.mkdir(exist_ok=True)
            yield directory, True
            done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alembic_upgrade(url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")


async def _ensure_pg_database(url: str) -> None:
    """Creates the worker's database on first use (CREATE DATABASE cannot run in a transaction)."""
    name = make_url(url).database
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


async def _reset_pg_schema(url: str) -> None:
    if XDIST_WORKER:
        await _ensure_pg_database(url)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    except OSError as exc:  # refuse to silently skip: CI must prove the PostgreSQL path
        pytest.fail(f"EQIAN_TEST_PG_URL is set but PostgreSQL is unreachable: {exc}")
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        url = PG_URL
        await _reset_pg_schema(url)
    if SCHEMA_FROM_MODELS:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await engine.dispose()
        return url
    # Alembic's env runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(_alembic_upgrade, url)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


# Children before parents, so a DELETE never trips a foreign key.
_TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]
# One round trip names the tables holding rows. Emptying only those is what makes a test's setup
# cheap: on PostgreSQL a TRUNCATE costs a new file per table (about 2.5 s for all of them), and
# a typical test fills a dozen.
_NON_EMPTY = text(
    " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in _TABLES)  # noqa: S608 - our names
)
# Sequences handed a value since their last reset (pg_sequences shows NULL until then) go back
# to their start, in one round trip.
_RESET_USED_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false) "
    "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
)
# Tables whose rows the database itself refuses to DELETE (audit_log's append-only trigger):
# TRUNCATE fires no row trigger, as when every table was truncated.
_GUARDED = text(
    "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
    "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
)


async def _empty_tables(engine: AsyncEngine) -> None:
    """Leaves every table empty, and on PostgreSQL every id sequence at its start (as TRUNCATE …
    RESTART IDENTITY did), touching only the tables and sequences a test used."""
    async with engine.begin() as conn:
        dirty = set((await conn.execute(_NON_EMPTY)).scalars())
        if engine.dialect.name != "postgresql":
            # SQLite has no TRUNCATE: the audit log's DELETE guard comes off and goes back on.
            async with audit_guard_lifted(conn) if "audit_log" in dirty else contextlib.nullcontext():
                for name in _TABLES:
                    if name in dirty:
                        await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - names from our metadata
            return
        guarded = sorted(dirty & set((await conn.execute(_GUARDED)).scalars())) if dirty else []
        if guarded:
            await conn.execute(text(f"TRUNCATE {', '.join(guarded)} CASCADE"))
        for name in _TABLES:
            if name in dirty and name not in guarded:
                await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - names from our metadata
        await conn.execute(_RESET_USED_SEQUENCES)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Empty tables, and a session for test setup and assertions.

    It autocommits each statement, so it never holds SQLite's write lock or a stale snapshot
    while the application under test serves requests.
    """
    await _empty_tables(engine)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with AsyncSession(autocommit, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
async def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    settings = Settings(
        env="test",
        database_url=database_url,
        var_dir=tmp_path_factory.mktemp("var"),
        secret_key="test-secret",
        outbox_poll_seconds=0,  # tests dispatch the outbox themselves, when they mean to
        # Every test's failed logins and refusals come from one address to this one app; the
        # limiter's own tests build apps with low limits.
        rate_limit_login_per_ip_per_minute=100_000,
        rate_limit_login_per_user_per_minute=100_000,
        rate_limit_denied_per_minute=100_000,
        rate_limit_write_per_minute=100_000,
        rate_limit_reveal_per_hour=100_000,
    )
    application = create_app(settings)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI, db: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def browser(app: FastAPI, db: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """What a browser sends to the pages (HTML wanted, cookies kept); a server error comes back as a
    500 page, not as an exception in the test. ``tests.factories.sign_in`` opens its session."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running in this thread
    for as long as its browser lives, and no asyncio test may start while it does."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))
