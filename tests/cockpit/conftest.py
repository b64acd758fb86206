"""Fixtures of the cockpit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from eqian.cockpit import rollups
from tests.cockpit.helpers import SOURCES
from tests.cockpit.raw_facts import metadata, raw


@pytest.fixture
async def raw_table(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(delete(raw))
    monkeypatch.setattr(rollups, "SOURCES", SOURCES)
    yield
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
