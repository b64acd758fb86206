"""Backup and restore: the drill restores into a fresh database and finds 0 differences in every
table; a changed row is found; a restore never lands on a database that holds data by accident."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from eqian.all_models import Base
from eqian.core import backup
from eqian.core.db import make_engine, make_sessionmaker
from eqian.demo.generator import seed_demo

PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


async def _admin(url: str, statement: str) -> None:
    engine = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


async def _fresh(backend: str, tmp_path: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    db = f"{make_url(PG_URL).database}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{name}"
    await _admin(PG_URL, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    await _admin(PG_URL, f'CREATE DATABASE "{db}"')
    return make_url(PG_URL).set(database=db).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
async def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    backend = str(request.param)
    url = await _fresh(backend, tmp_path, "bk_src")
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await seed_demo(make_sessionmaker(engine), password="drill-pass-365", units=80, seed=7, domains=False)
    await engine.dispose()
    yield backend, url
    if backend == "postgresql":
        await _admin(PG_URL, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


async def test_backup_restore_drill_tamper_and_refusal(seeded: tuple[str, str], tmp_path: Path) -> None:
    backend, url = seeded
    result = await backup.drill(url)
    assert result.differences == []
    assert result.tables == len(Base.metadata.tables)
    assert result.rows > 1_000  # the demo district, not an empty schema

    dump = tmp_path / "eqian.backup"
    await _to_thread_backup(url, dump)
    target = await _fresh(backend, tmp_path, "bk_target")
    await backup.restore(target, dump)
    engine = make_engine(target)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE units SET name = name || '（改）' WHERE id = (SELECT min(id) FROM units)")
        )
    await engine.dispose()
    problems = await backup.compare(url, target, only={"units", "users"})
    assert len(problems) == 1
    assert problems[0].startswith("units:")

    with pytest.raises(backup.BackupError, match="not empty"):
        await backup.restore(target, dump)
    await backup.restore(target, dump, force=True)
    assert await backup.compare(url, target, only={"units", "users"}) == []
    if backend == "postgresql":
        await _admin(PG_URL, f'DROP DATABASE IF EXISTS "{make_url(target).database}" WITH (FORCE)')


async def _to_thread_backup(url: str, dump: Path) -> None:
    import asyncio

    await asyncio.to_thread(backup.backup, url, dump)


async def test_a_missing_backup_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(backup.BackupError, match="no backup file"):
        await backup.restore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path / "nope.backup")
