"""Backup, restore and the restore drill, for the embedded SQLite file and for PostgreSQL.

SQLite is copied with SQLite's online backup API (a consistent snapshot while the server runs);
PostgreSQL with its own ``pg_dump`` / ``pg_restore`` (custom format), so a dump can also be restored
by an operator without eqian. The drill restores a backup into a fresh database and compares every
table row by row, which is the only proof that a backup is a backup.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData, make_url, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from eqian.core.db import make_engine


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


@dataclass(frozen=True)
class TableDigest:
    rows: int
    sha256: str


@dataclass(frozen=True)
class DrillResult:
    tables: int
    rows: int
    differences: list[str]
    backup_seconds: float
    restore_seconds: float
    compare_seconds: float


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for the PostgreSQL command-line tools, the password kept out of argv."""
    parsed = make_url(url)
    args = [f"--host={parsed.host or '127.0.0.1'}", f"--port={parsed.port or 5432}"]
    if parsed.username:
        args.append(f"--username={parsed.username}")
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return args, env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    tool = shutil.which(cmd[0])
    if tool is None:
        raise BackupError(f"{cmd[0]} not found: install the PostgreSQL client tools")
    done = subprocess.run([tool, *cmd[1:]], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{cmd[0]} failed: {done.stderr.strip()[:500]}")


def backup(url: str, dest: Path) -> None:
    """Write a backup of the database at ``url`` to ``dest`` (replaced atomically)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    if make_url(url).get_backend_name() == "sqlite":
        source_path = _sqlite_path(url)
        if not source_path.exists():
            raise BackupError(f"no database file at {source_path}")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(source_path) as source, sqlite3.connect(partial) as target:
            source.backup(target)
        target.close()
    else:
        args, env = _libpq(url)
        database = make_url(url).database or ""
        _run(["pg_dump", *args, "--format=custom", "--no-owner", f"--file={partial}", database], env)
    os.replace(partial, dest)


async def restore(url: str, source: Path, *, force: bool = False) -> None:
    """Restore ``source`` into the database at ``url``; refuses a database holding tables unless forced."""
    if not await asyncio.to_thread(source.exists):
        raise BackupError(f"no backup file at {source}")
    if not force and await _table_names(url):
        raise BackupError("the target database is not empty; restore into a fresh one or pass --force")
    await asyncio.to_thread(_restore_into, url, source)


def _restore_into(url: str, source: Path) -> None:
    if make_url(url).get_backend_name() == "sqlite":
        target_path = _sqlite_path(url)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        partial = target_path.with_name(f".{target_path.name}.restoring")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(source) as backup_db, sqlite3.connect(partial) as target:
            backup_db.backup(target)
        target.close()
        for suffix in ("-wal", "-shm"):  # a stale WAL would be replayed over the restored file
            Path(f"{target_path}{suffix}").unlink(missing_ok=True)
        os.replace(partial, target_path)
    else:
        args, env = _libpq(url)
        database = make_url(url).database or ""
        _run(
            [
                "pg_restore",
                *args,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--exit-on-error",
                f"--dbname={database}",
                str(source),
            ],
            env,
        )


async def _reflect(engine: AsyncEngine) -> MetaData:
    metadata = MetaData()
    async with engine.connect() as conn:
        await conn.run_sync(metadata.reflect)
    return metadata


async def _table_names(url: str) -> list[str]:
    if make_url(url).get_backend_name() == "sqlite" and not _sqlite_path(url).exists():
        return []
    engine = make_engine(url)
    try:
        return sorted((await _reflect(engine)).tables)
    finally:
        await engine.dispose()


async def digests(url: str, only: Collection[str] | None = None) -> dict[str, TableDigest]:
    """Row count and a SHA-256 over every row (in primary-key order) of every table (or ``only`` these)."""
    engine = make_engine(url)
    result: dict[str, TableDigest] = {}
    try:
        metadata = await _reflect(engine)
        async with engine.connect() as conn:
            for name, table in sorted(metadata.tables.items()):
                if only is not None and name not in only:
                    continue
                order = list(table.primary_key.columns) or list(table.columns)
                if engine.dialect.name == "postgresql":
                    # Hashed inside the server: every row's text form, in key order, never shipped out.
                    keys = ", ".join(f'"{c.name}"' for c in order)
                    query = text(
                        f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY {keys})), '') "  # noqa: S608 - names from reflection
                        f'FROM "{name}" AS t'
                    )
                    count, md5 = (await conn.execute(query)).one()
                    result[name] = TableDigest(int(count), str(md5))
                    continue
                digest = hashlib.sha256()
                rows = 0
                stream = await conn.stream(select(table).order_by(*order).execution_options(yield_per=5000))
                async for row in stream:
                    digest.update(repr(tuple(_canonical(v) for v in row)).encode())
                    rows += 1
                result[name] = TableDigest(rows, digest.hexdigest())
    finally:
        await engine.dispose()
    return result


def _canonical(value: object) -> object:
    """Values as both drivers give them back: SQLite returns JSON as text and timestamps naive."""
    if isinstance(value, memoryview):
        return bytes(value)
    return value


async def compare(url_a: str, url_b: str, only: Collection[str] | None = None) -> list[str]:
    return differences(await digests(url_a, only), await digests(url_b, only))


def differences(a: dict[str, TableDigest], b: dict[str, TableDigest]) -> list[str]:
    problems = [f"{name}: missing in the restore" for name in sorted(a.keys() - b.keys())]
    problems += [f"{name}: not in the source" for name in sorted(b.keys() - a.keys())]
    for name in sorted(a.keys() & b.keys()):
        if a[name] != b[name]:
            problems.append(f"{name}: {a[name].rows} rows vs {b[name].rows}, contents differ")
    return problems


async def drill(url: str, workdir: Path | None = None) -> DrillResult:
    """Back up ``url``, restore into a fresh database beside it, compare every table, clean up."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        dump = Path(tmp) / "drill.backup"
        started = time.perf_counter()
        backup(url, dump)
        backed_up = time.perf_counter()
        if make_url(url).get_backend_name() == "sqlite":
            scratch = f"sqlite+aiosqlite:///{Path(tmp) / 'restored.db'}"
            await restore(scratch, dump)
            restored = time.perf_counter()
            source, copy = await digests(url), await digests(scratch)
        else:
            scratch_name = f"{make_url(url).database}_drill"
            scratch = make_url(url).set(database=scratch_name).render_as_string(hide_password=False)
            await _recreate_pg_database(url, scratch_name)
            try:
                await restore(scratch, dump)
                restored = time.perf_counter()
                source, copy = await digests(url), await digests(scratch)
            finally:
                await _drop_pg_database(url, scratch_name)
        compared = time.perf_counter()
        problems = differences(source, copy)
    return DrillResult(
        tables=len(source),
        rows=sum(d.rows for d in source.values()),
        differences=problems,
        backup_seconds=backed_up - started,
        restore_seconds=restored - backed_up,
        compare_seconds=compared - restored,
    )


async def _admin_execute(url: str, statement: str) -> None:
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    try:
        async with admin.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


async def _recreate_pg_database(url: str, name: str) -> None:
    await _drop_pg_database(url, name)
    await _admin_execute(url, f'CREATE DATABASE "{name}"')


async def _drop_pg_database(url: str, name: str) -> None:
    await _admin_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
