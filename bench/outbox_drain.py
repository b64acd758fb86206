"""Draining an outbox backlog behind a long history of dispatched events (migration 0011).

Dispatched events stay in ``outbox_events`` (the record of what went out), so a district's table
only grows. The dispatcher asks for the first hundred undispatched events in id order, at every
poll in every worker; when a 110 export of 100,000 rows is imported at once, or a handler was
down, that question is asked a thousand times in a row. This script drains such a backlog with
the real dispatcher (``core.outbox.dispatch_pending``, a batchable handler that does nothing, so
the figure is the dispatcher's own cost) three times on one database:

- **baseline**: the backlog alone, no history;
- **history**: the same backlog behind ``--history`` dispatched events, with the schema as it is
  (``ix_outbox_events_due``: the undispatched events by id);
- **before 0011**: the same, with the index that 0011 replaced (``dispatched_at``) in its place.

``history_ratio`` = history / baseline (the target: about 1, the drain not slowed by history);
``before_ratio`` = before 0011 / history (what the index saves). PostgreSQL by default; SQLite with
``--sqlite``. Usage: python bench/outbox_drain.py [--quick] [--sqlite] [--pg URL]
Last line: JSON with the three drain times (s), events per second and both ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pgadmin import admin  # noqa: E402

from eqian.core import outbox  # noqa: E402
from eqian.core.db import make_engine, make_sessionmaker, table_of  # noqa: E402

TOPIC = "bench.drained"
DB_NAME = "eqian_bench_outbox"
# The history and the backlog, made by the database itself (a million-row executemany would be
# most of the run).
_FILL_PG = """
    INSERT INTO outbox_events (topic, payload, created_at, available_at, attempts, dispatched_at)
    SELECT :topic, '{}', now(), now(), 0, CASE WHEN :dispatched THEN now() END FROM generate_series(1, :n)
"""
_FILL_SQLITE = """
    INSERT INTO outbox_events (topic, payload, created_at, available_at, attempts, dispatched_at)
    WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :n)
    SELECT :topic, '{}', datetime('now'), datetime('now'), 0, CASE WHEN :dispatched THEN datetime('now') END
    FROM s
"""


async def _nothing(session: Any, event: Any) -> None:
    return None


async def _fresh(engine: AsyncEngine, history: int, backlog: int, *, before_0011: bool) -> None:
    """The table anew: ``history`` dispatched events, then ``backlog`` undispatched ones."""
    table = table_of(outbox.OutboxEvent)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: table.drop(c, checkfirst=True))
        await conn.run_sync(lambda c: table.create(c))
        if before_0011:
            await conn.execute(text("DROP INDEX ix_outbox_events_due"))
            await conn.execute(
                text("CREATE INDEX ix_outbox_events_dispatched_at ON outbox_events (dispatched_at)")
            )
        pg = conn.dialect.name == "postgresql"
        for n, dispatched in ((history, True), (backlog, False)):
            if n:
                await conn.execute(
                    text(_FILL_PG if pg else _FILL_SQLITE), {"n": n, "dispatched": dispatched, "topic": TOPIC}
                )
        await conn.execute(text("ANALYZE outbox_events" if pg else "ANALYZE"))


async def _drain(engine: AsyncEngine) -> tuple[float, int, int]:
    factory = make_sessionmaker(engine)
    rounds = done = 0
    start = time.perf_counter()
    while (n := await outbox.dispatch_pending(factory)) > 0:
        rounds += 1
        done += n
    return time.perf_counter() - start, rounds, done


async def measure(url: str, history: int, backlog: int) -> dict[str, Any]:
    engine = make_engine(url)
    figures: dict[str, Any] = {}
    try:
        for name, hist, before in (
            ("baseline", 0, False),
            ("history", history, False),
            ("before_0011", history, True),
        ):
            await _fresh(engine, hist, backlog, before_0011=before)
            seconds, rounds, done = await _drain(engine)
            if done != backlog:
                raise RuntimeError(f"{name}: drained {done} of {backlog}")
            print(
                f"{name}: {backlog:,} events behind {hist:,} in {seconds:.2f} s ({rounds} rounds)", flush=True
            )
            figures[f"{name}_s"] = round(seconds, 2)
            figures[f"{name}_events_per_s"] = round(backlog / seconds)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: table_of(outbox.OutboxEvent).drop(c, checkfirst=True))
        await engine.dispose()
    figures["history_ratio"] = round(figures["history_s"] / figures["baseline_s"], 2)
    figures["before_ratio"] = round(figures["before_0011_s"] / figures["history_s"], 2)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sqlite", action="store_true", help="an embedded SQLite file instead of PostgreSQL")
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/")
    args = parser.parse_args()
    history, backlog = (50_000, 5_000) if args.quick else (500_000, 50_000)
    outbox.subscribe(TOPIC, _nothing, batchable=True)
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/outbox.db"
            figures = await measure(url, history, backlog)
    else:
        await admin(args.pg, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await admin(args.pg, f"CREATE DATABASE {DB_NAME}")
        try:
            figures = await measure(args.pg + DB_NAME, history, backlog)
        finally:
            await admin(args.pg, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    backend = "sqlite" if args.sqlite else "postgresql"
    print(
        json.dumps(
            {
                "mode": "quick" if args.quick else "full",
                "backend": backend,
                "history": history,
                "backlog": backlog,
            }
            | figures
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
