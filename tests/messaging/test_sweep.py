"""The session sweep: a socket whose session ended without an event reaching this worker (expiry,
a lost pub/sub message) is closed when its slice of the sockets is checked, and only then."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import AuthSession
from eqian.core.db import utcnow
from eqian.messaging.ws import SWEEP_SLICES, get_hub
from tests.messaging.helpers import make_msg_world, ready_socket
from tests.servers import closed_with, serving


async def test_sweep_closes_ended_sessions_slice_by_slice(app: FastAPI, db: AsyncSession) -> None:
    mw = await make_msg_world(db)
    hub = get_hub(app)
    names = ("unit_security", "unit_security_a2")
    async with serving(app) as base:
        sockets = {name: await ready_socket(base, mw.tokens[name]) for name in names}
        auth_ids = {
            name: await db.scalar(
                select(AuthSession.id).where(
                    AuthSession.user_id == mw.user(name).id, AuthSession.kind == "bearer"
                )
            )
            for name in names
        }
        # Expired in the database: no event tells the worker.
        await db.execute(
            update(AuthSession).where(AuthSession.id.in_(list(auth_ids.values()))).values(expires_at=utcnow())
        )
        await db.commit()
        first, second = auth_ids["unit_security"], auth_ids["unit_security_a2"]
        assert first is not None
        assert second is not None
        assert (first - second) % SWEEP_SLICES  # the two sign-ins fall in different slices
        assert await hub.sweep(first % SWEEP_SLICES) == 1
        assert await closed_with(sockets["unit_security"]) == 4001
        assert not sockets["unit_security_a2"].close_code
        assert await hub.sweep() == 1  # a full sweep finds the other
        assert await closed_with(sockets["unit_security_a2"]) == 4001
