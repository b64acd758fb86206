"""One statement on a PostgreSQL server's maintenance database, for benchmarks that create and
drop their own throwaway databases (``CREATE DATABASE`` cannot run inside a transaction)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def admin(server: str, sql: str) -> None:
    """Run ``sql`` in autocommit on the ``postgres`` database of ``server`` (a URL ending in ``/``)."""
    engine = create_async_engine(server + "postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
