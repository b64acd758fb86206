"""The PostgreSQL pool hands out a live connection after the server closed a pooled one (a
restart, an idle timeout, an administrator terminating backends), without a ping at every
checkout (core.db._replace_if_closed)."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import make_url, text

from eqian.core.db import make_engine

PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL and os.environ.get("EQIAN_REQUIRE_PG") != "1", reason="needs PostgreSQL (EQIAN_TEST_PG_URL)"
)


async def test_a_connection_the_server_closed_is_replaced_at_checkout() -> None:
    url = make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False)
    engine = make_engine(url)
    admin = make_engine(url)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        # back in the pool, idle; now the server ends it
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        await asyncio.sleep(0.2)  # the client learns of it when its event loop reads the FIN
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()
