"""An assistance request reaches, live, every socket that may read it: the units in the radius and
the officers of every station whose units it reaches, not only the station it was filed under."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection

from eqian.organizations.models import Unit
from tests.messaging.helpers import API, make_msg_world, ready_socket
from tests.servers import serving


async def _assistance_message(ws: ClientConnection, assistance_id: int) -> dict[str, Any] | None:
    """The request's own message on this socket, or None if none comes within 3 s."""
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 3))
            if frame["type"] == "message" and (frame.get("assistance") or {}).get("id") == assistance_id:
                return frame
    except TimeoutError:
        return None


async def test_bureau_request_reaches_both_stations_live(
    app: FastAPI, db: AsyncSession, client: httpx.AsyncClient
) -> None:
    mw = await make_msg_world(db)
    w = mw.world
    # Unit b2 of station B nearest the spot: the request is filed under station B.
    await db.execute(update(Unit).where(Unit.id == w.units["b2"]).values(lat=30.8418))
    await db.commit()
    async with serving(app) as base:
        names = ("station_officer", "station_officer_b", "unit_security", "unit_security_b1")
        sockets = {name: await ready_socket(base, mw.tokens[name]) for name in names}
        for ws in sockets.values():
            await ws.send(json.dumps({"type": "resume", "cursors": {}}))
        try:
            body = {"description": "协查走失儿童", "lat": 30.842, "lng": 120.26, "radius_m": 1000}
            resp = await client.post(f"{API}/assistance", json=body, headers=mw.headers["bureau_admin"])
            assert resp.status_code == 201, resp.text
            assert resp.json()["station_id"] == w.station_b
            aid = resp.json()["id"]
            got = {name: await _assistance_message(ws, aid) for name, ws in sockets.items()}
        finally:
            for ws in sockets.values():
                await ws.close()
    assert all(frame is not None for frame in got.values()), {k: v is not None for k, v in got.items()}
