"""Photos: JPEG/PNG by their bytes only, at most 5 MB; a refused upload writes nothing at all; a
stored photo is served only inside the caller's jurisdiction."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.hazards import service
from eqian.hazards.models import Hazard, Inspection
from tests.hazards.helpers import API_H, API_I, make_hz_world

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200


def _uploads(app: FastAPI) -> Path:
    return service.local_uploads(app.state.settings.var_dir)


def _files(app: FastAPI) -> set[str]:
    d = _uploads(app)
    return {p.name for p in d.iterdir()} if d.exists() else set()


async def test_photo_type_and_size(client: httpx.AsyncClient, db: AsyncSession, app: FastAPI) -> None:
    hz = await make_hz_world(db)
    items = hz.items["garment"]
    data = json.dumps(
        {"unit_id": hz.world.units["a1"], "results": [{"item_id": i.id, "result": "fail"} for i in items]}
    )
    h = hz.headers["station_officer"]
    before = _files(app)
    refused = [
        ("virus.jpg", EXE, "image/jpeg"),
        ("big.jpg", JPEG + b"\x00" * (6 * 1024 * 1024), "image/jpeg"),
        ("note.png", b"just text", "image/png"),
    ]
    for name, content, ctype in refused:
        files = {
            f"photo_{items[0].id}": ("ok.jpg", JPEG, "image/jpeg"),
            f"photo_{items[1].id}": (name, content, ctype),
        }
        resp = await client.post(API_I, data={"data": data}, files=files, headers=h)
        assert resp.status_code == 422, (name, resp.text)
        assert resp.json()["error"]["details"][0]["field"] == f"photo_{items[1].id}"
    assert await db.scalar(select(func.count()).select_from(Inspection)) == 0
    assert await db.scalar(select(func.count()).select_from(Hazard)) == 0
    assert _files(app) == before

    files = {
        f"photo_{items[0].id}": ("a.bin", JPEG, "application/octet-stream"),  # the client's type is ignored
        f"photo_{items[1].id}": ("b.jpg", PNG, "image/jpeg"),
    }
    resp = await client.post(API_I, data={"data": data}, files=files, headers=h)
    assert resp.status_code == 201, resp.text
    urls = [r["photo_url"] for r in resp.json()["results"] if r["photo_url"]]
    assert len(urls) == 2
    new = _files(app) - before
    assert {Path(n).suffix for n in new} == {".jpg", ".png"}
    assert all(len(Path(n).stem) == 32 for n in new)

    jpeg_url = next(u for u in urls if u.endswith(".jpg"))
    got = await client.get(jpeg_url, headers=hz.headers["unit_security"])
    assert got.status_code == 200
    assert got.content == JPEG
    assert got.headers["content-type"] == "image/jpeg"
    assert (await client.get(jpeg_url, headers=hz.headers["station_officer_b"])).status_code == 404
    assert (await client.get(f"{API_H}/photos/..%2F..%2Fsecret_key", headers=h)).status_code in (404, 422)
    assert (await client.get(f"{API_H}/photos/{'0' * 32}.jpg", headers=h)).status_code == 404

    # Evidence of a fix: the same checks; a refused photo leaves the hazard open.
    hazard_id = resp.json()["hazard_ids"][0]
    us = hz.headers["unit_security"]
    bad = await client.post(
        f"{API_H}/{hazard_id}/evidence",
        data={"note": "已整改"},
        files={"photo": ("fix.jpg", EXE, "image/jpeg")},
        headers=us,
    )
    assert bad.status_code == 422
    assert (await db.get(Hazard, hazard_id)).status == "open"  # type: ignore[union-attr]
    ok = await client.post(
        f"{API_H}/{hazard_id}/evidence",
        data={"note": "已整改"},
        files={"photo": ("fix.png", PNG, "image/png")},
        headers=us,
    )
    assert ok.status_code == 200, ok.text
    photo_url = ok.json()["events"][-1]["photo_url"]
    assert (await client.get(photo_url, headers=hz.headers["liaison_officer"])).status_code == 200
    assert (await client.get(photo_url, headers=hz.headers["unit_security_b1"])).status_code == 404
