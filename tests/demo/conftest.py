"""The demo district these tests read: seeded once per test run and backend, then copied.

Seeding the full district (every domain, a year of history) takes 20–40 s; the tests only read
it (their sessions roll back), so one seed serves every module here and every xdist worker. The
first worker to need a backend seeds it (``tests.conftest.built_once``). On SQLite each worker
reads a copy of the file, since a SQLite session holds the write lock even to read; on
PostgreSQL the workers share the database.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eqian.all_models import Base
from eqian.core.db import make_engine, make_sessionmaker
from eqian.demo.generator import SeedReport, seed_demo
from tests.conftest import _ensure_pg_database, built_once

PASSWORD = "Demo-pass-365"
N_UNITS = 300
SEED = 365
TODAY = dt.date(2025, 3, 12)  # pinned: the ledger runs 2024-03-01 … 2025-03-11
PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


@dataclass
class Seeded:
    factory: async_sessionmaker[AsyncSession]
    report: SeedReport
    backend: str
    ticks: list[tuple[int, int]] = field(default_factory=list)

    @property
    def anchor(self) -> dt.datetime:
        assert self.report.anchor is not None
        return self.report.anchor

    @property
    def dumpers(self) -> set[int]:
        return set(self.report.dumping_unit_ids)


@dataclass
class _Built:
    report: SeedReport
    ticks: list[tuple[int, int]]


async def _seed(engine: AsyncEngine) -> _Built:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    ticks: list[tuple[int, int]] = []
    report = await seed_demo(
        make_sessionmaker(engine),
        seed=SEED,
        password=PASSWORD,
        units=N_UNITS,
        today=TODAY,
        progress=lambda done, total: ticks.append((done, total)),
    )
    return _Built(report, ticks)


def _pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def _read(path: Path) -> _Built:
    built = pickle.loads(path.read_bytes())  # noqa: S301 - written by this run's own workers
    assert isinstance(built, _Built)
    return built


@pytest.fixture(scope="session")
async def demo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    with built_once(tmp_path_factory, "demo-sqlite") as (shared, to_build):
        if to_build:
            engine = make_engine(f"sqlite+aiosqlite:///{shared / 'demo.db'}")
            try:
                built = await _seed(engine)
            finally:
                await engine.dispose()  # closing the last connection folds the WAL into the file
            (shared / "built.pickle").write_bytes(pickle.dumps(built))
    built = _read(shared / "built.pickle")
    copy = tmp_path_factory.mktemp("demo") / "demo.db"
    shutil.copy(shared / "demo.db", copy)
    engine = make_engine(f"sqlite+aiosqlite:///{copy}")
    yield Seeded(make_sessionmaker(engine), built.report, "sqlite", built.ticks)
    await engine.dispose()


@pytest.fixture(scope="session")
async def demo_postgresql(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    # Both workers read the one database: PostgreSQL's snapshots keep each test's rolled-back
    # writes to itself, and a copy would cost a checkpoint to drop.
    database = f"{make_url(PG_URL).database}_demo"
    with built_once(tmp_path_factory, "demo-postgresql") as (shared, to_build):
        if to_build:
            await _ensure_pg_database(_pg_url(database))
            engine = make_engine(_pg_url(database))
            try:
                # An earlier run may have left a district; only this run's build counts. A new
                # schema, not a new database: DROP DATABASE forces a checkpoint (tens of seconds
                # under load).
                async with engine.begin() as conn:
                    await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                    await conn.execute(text("CREATE SCHEMA public"))
                built = await _seed(engine)
            finally:
                await engine.dispose()
            (shared / "built.pickle").write_bytes(pickle.dumps(built))
    built = _read(shared / "built.pickle")
    engine = make_engine(_pg_url(database))
    yield Seeded(make_sessionmaker(engine), built.report, "postgresql", built.ticks)
    await engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest) -> Seeded:
    """The district (seed 365, 300 units, ledger up to TODAY) on each backend in turn."""
    district = request.getfixturevalue(f"demo_{request.param}")
    assert isinstance(district, Seeded)
    return district


@pytest.fixture
async def session(seeded: Seeded) -> AsyncIterator[AsyncSession]:
    """A session on it whose writes are rolled back: the district stays as seeded for the rest."""
    async with seeded.factory() as s:
        yield s
        await s.rollback()
