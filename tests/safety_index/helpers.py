"""Shared setup of the safety-index tests."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from tests.factories import World, make_world

LOCAL = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, h: int = 10) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=LOCAL).astimezone(dt.UTC)


async def world_with_b1_security(db: AsyncSession) -> World:
    w = await make_world(db)
    if "unit_security_b1" not in w.users:
        user = User(
            username="unit_security_b1",
            display_name="unit_security_b1",
            password_hash=w.users["bureau_admin"].password_hash,
            role=Role.UNIT_SECURITY.value,
            unit_id=w.units["b1"],
        )
        db.add(user)
        await db.commit()
        w.users["unit_security_b1"] = user
    return w
