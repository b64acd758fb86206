"""Shared setup of the messaging tests: ``make_world`` plus a second unit user (a2) and one in
station B (b1), bearer headers for every account, and the registry channels."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect

from eqian.core.accounts import Role, User
from eqian.messaging import service
from eqian.messaging.models import Channel
from tests.factories import World, bearer, make_world

API = "/api/v1/messaging"


@dataclass
class MsgWorld:
    world: World
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)  # key -> id

    def user(self, name: str) -> User:
        return self.world.users[name]


async def make_msg_world(db: AsyncSession) -> MsgWorld:
    w = await make_world(db)
    extra = {"unit_security_a2": w.units["a2"], "unit_security_b1": w.units["b1"]}
    for username, unit_id in extra.items():
        user = User(
            username=username,
            display_name=username,
            password_hash=w.users["unit_security"].password_hash,
            role=Role.UNIT_SECURITY.value,
            unit_id=unit_id,
        )
        db.add(user)
        await db.flush()
        w.users[username] = user
    await db.commit()
    mw = MsgWorld(world=w)
    for name, user in w.users.items():
        h = await bearer(db, user)
        mw.headers[name] = h
        mw.tokens[name] = h["Authorization"].removeprefix("Bearer ")
    await service.ensure_channels(db)
    for ch in await db.scalars(select(Channel).where(Channel.key.is_not(None))):
        assert ch.key is not None
        mw.channels[ch.key] = ch.id
    return mw


async def ready_socket(base: str, token: str) -> ClientConnection:
    """A /ws socket of the server at ``base``, signed in with ``token``, past its ``ready`` frame."""
    ws = await connect(f"ws://{base}/ws", origin=None)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ready":
        pass
    return ws
