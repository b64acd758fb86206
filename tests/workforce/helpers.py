"""Shared helpers of the workforce tests: valid identities, hires, and the personal-data scan."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.ids import is_valid_mobile, is_valid_resident_id, make_resident_id
from tests.factories import ROLES, World, bearer

TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
_ID_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_MOBILE_TOKEN = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def rid(n: int, region: str = "341221") -> str:
    """A valid resident ID number, distinct per ``n`` (0-999 per birth day)."""
    return make_resident_id(region, dt.date(1990, 1, 1) + dt.timedelta(days=n // 1000), n % 1000)


def mobile(n: int) -> str:
    return f"139{n:08d}"


def hire_body(unit_id: int, n: int, hired_on: dt.date | str | None = None, **extra: str) -> dict[str, object]:
    body: dict[str, object] = {
        "unit_id": unit_id,
        "name": f"员工{n}",
        "id_number": rid(n),
        "phone": mobile(n),
        "hired_on": hired_on
        if isinstance(hired_on, str)
        else (hired_on or TODAY - dt.timedelta(days=3)).isoformat(),
        "dormitory": "织里镇宿舍1号",
        "position": "车工",
    }
    body.update(extra)
    return body


def assert_no_pii(text: str) -> None:
    """No checksum-valid ID number and no full mobile number anywhere in a response body."""
    ids = [t for t in _ID_TOKEN.findall(text) if is_valid_resident_id(t)]
    assert not ids, f"unmasked ID number in response: {ids[:3]}"
    phones = [t for t in _MOBILE_TOKEN.findall(text) if is_valid_mobile(t)]
    assert not phones, f"unmasked mobile in response: {phones[:3]}"


async def headers_for(
    db: AsyncSession, world: World, extra: tuple[str, ...] = ()
) -> dict[str, dict[str, str]]:
    return {who: await bearer(db, world.users[who]) for who in (*ROLES, "station_officer_b", *extra)}


async def hire(client: httpx.AsyncClient, h: dict[str, str], body: dict[str, object]) -> dict[str, object]:
    resp = await client.post("/api/v1/workers/hires", json=body, headers=h)
    assert resp.status_code == 201, resp.text
    out: dict[str, object] = resp.json()
    return out
