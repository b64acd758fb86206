"""The consoles as a browser gets them: the right console per role, the script's configuration, no
inline script (the CSP forbids it), the map's units in scope, and the write path the script uses
(session cookie + X-CSRF-Token header) end to end: an instruction sent, seen in the unit's inbox,
acknowledged, and counted on the officer's board."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.messaging import service
from eqian.messaging.models import Channel
from tests.factories import World, make_world, sign_in

HTML = {"Accept": "text/html"}
API = "/api/v1/messaging"
STATIC = Path(service.__file__).resolve().parents[1] / "web" / "static"


def config_of(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="mx-config">(.*?)</script>', html, re.S)
    assert found, "the console carries its configuration as a JSON block"
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def assert_no_inline_script(html: str) -> None:
    # script-src 'self': an inline script would be blocked, so every script must be a file or data.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers are blocked by the CSP too"
    assert 'style="' not in html


async def test_each_role_gets_its_console(browser: httpx.AsyncClient, db: AsyncSession) -> None:
    w = await make_world(db)

    # Not signed in: the login page, coming back here afterwards.
    resp = await browser.get("/messaging")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=/messaging"

    csrf = await sign_in(db, browser, w.users["station_officer"])
    resp = await browser.get("/messaging")
    assert resp.status_code == 200
    html = resp.text
    assert_no_inline_script(html)
    assert '<link rel="stylesheet" href="/static/css/messaging.css">' in html
    assert '<script src="/static/js/messaging.js" defer></script>' in html
    assert f'"X-CSRF-Token": "{csrf}"' in html  # the script reads it from the body's hx-headers
    config = config_of(html)
    assert config["console"] == "officer"
    assert config["user_id"] == w.users["station_officer"].id
    assert config["can_command"] is True
    assert config["can_post_registry"] is True
    assert (config["api"], config["ws"]) == (API, "/ws")
    assert config["strings"]["acknowledged"] == "已确认"
    for marker in (
        'id="mx-instruction-form"',
        'id="mx-assist-form"',
        'id="mx-channel-list"',
        'data-pane="board"',
    ):
        assert marker in html
    assert 'name="unit_categories" value="market"' in html
    # The map starts at the officer's station.
    assert 'name="lat" inputmode="decimal" required value="30.85"' in html

    csrf = await sign_in(db, browser, w.users["unit_security"])
    html = (await browser.get("/messaging")).text
    assert_no_inline_script(html)
    config = config_of(html)
    assert config["console"] == "unit"
    assert config["can_command"] is False
    assert config["can_post_registry"] is False
    assert 'id="mx-inbox"' in html
    assert 'id="mx-instruction-form"' not in html
    assert 'id="mx-assist-form"' not in html
    # The officers the unit may open a direct conversation with: its station's and its liaison officer,
    # not station B's.
    officers = re.findall(r'<option value="(\d+)">', html.split('id="mx-direct-form"')[1].split("</form>")[0])
    assert sorted(map(int, officers)) == sorted(
        [w.users["station_officer"].id, w.users["liaison_officer"].id]
    )

    # A mediator gets the officer console without the command forms (the API would refuse anyway).
    await sign_in(db, browser, w.users["mediator"])
    html = (await browser.get("/messaging")).text
    config = config_of(html)
    assert (config["console"], config["can_command"]) == ("officer", False)
    assert 'id="mx-instruction-form"' not in html


async def test_the_english_console_translates_the_script_strings(
    browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    w = await make_world(db)
    await sign_in(db, browser, w.users["station_officer"])
    browser.cookies.set("eqian_lang", "en")
    html = (await browser.get("/messaging")).text
    assert '<html lang="en">' in html
    strings = config_of(html)["strings"]
    assert len(strings) > 40
    assert (strings["acknowledged"], strings["ack"]) == ("Acknowledged", "Acknowledge")
    untranslated = {k: v for k, v in strings.items() if re.search(r"[\u4e00-\u9fff]", v)}
    assert untranslated == {}


def _near(items: list[dict[str, Any]]) -> dict[int, bool]:
    return {item["id"]: item["inside"] for item in items}


async def test_the_map_shows_only_units_in_scope(browser: httpx.AsyncClient, db: AsyncSession) -> None:
    w = await make_world(db)  # every unit of the factory stands at (30.84, 120.26)
    point = {"lat": "30.84", "lng": "120.26", "radius_m": "100"}

    await sign_in(db, browser, w.users["station_officer"])
    resp = await browser.get("/messaging/units-near", params=point)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert _near(body["items"]) == {w.units[k]: True for k in ("a1", "a2", "a3")}
    assert body["total"] == 3
    assert body["radius_m"] == 100
    first = body["items"][0]
    assert set(first) == {"id", "name", "category", "category_name", "lat", "lng", "distance_m", "inside"}
    assert first["distance_m"] == 0

    # 150 m north: outside a 100 m radius, still drawn (within twice the radius) but not a recipient.
    north = {**point, "lat": str(30.84 + 150 / 111_195)}
    items = (await browser.get("/messaging/units-near", params=north)).json()["items"]
    assert _near(items) == {w.units[k]: False for k in ("a1", "a2", "a3")}
    assert {i["distance_m"] for i in items} == {150}
    # 300 m away: beyond twice the radius, not drawn at all.
    far = {**point, "lat": str(30.84 + 300 / 111_195)}
    assert (await browser.get("/messaging/units-near", params=far)).json()["items"] == []

    await sign_in(db, browser, w.users["bureau_admin"])
    assert len((await browser.get("/messaging/units-near", params=point)).json()["items"]) == 5
    await sign_in(db, browser, w.users["unit_security"])
    assert _near((await browser.get("/messaging/units-near", params=point)).json()["items"]) == {
        w.units["a1"]: True
    }

    for bad in ({"lat": "abc"}, {"lat": "91"}, {"radius_m": "0"}, {"radius_m": "20001"}, {"lng": "nan"}):
        resp = await browser.get("/messaging/units-near", params={**point, **bad})
        assert resp.status_code == 422, bad
        error = resp.json()["error"]
        assert error["code"] == "validation_failed"
        assert [d["field"] for d in error["details"]] == [next(iter(bad))]
    resp = await browser.get("/messaging/units-near", params={"lat": "30.84"})
    assert resp.status_code == 422
    assert {d["field"] for d in resp.json()["error"]["details"]} == {"lng", "radius_m"}


async def _channel(db: AsyncSession, w: World) -> int:
    await service.ensure_channels(db)
    channel_id = await db.scalar(select(Channel.id).where(Channel.key == f"station:{w.station_a}"))
    assert channel_id is not None
    return channel_id


async def test_the_consoles_write_path_cookie_and_csrf_header(
    browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    """What messaging.js does with fetch(): the page's cookie, JSON bodies, X-CSRF-Token on writes."""
    w = await make_world(db)
    channel_id = await _channel(db, w)
    officer_csrf = await sign_in(db, browser, w.users["station_officer"])
    officer_cookie = browser.cookies["eqian_session"]
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    body = {
        "channel_id": channel_id,
        "title": "做好居住证登记",
        "body": "本周五前完成",
        "deadline": deadline.isoformat(),
    }

    refused = await browser.post(f"{API}/instructions", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    sent = await browser.post(f"{API}/instructions", json=body, headers={"X-CSRF-Token": officer_csrf})
    assert sent.status_code == 201, sent.text
    instruction = sent.json()
    assert instruction["progress"]["total"] == 3  # a1, a2, a3 of station A

    unit_csrf = await sign_in(db, browser, w.users["unit_security"])
    inbox = (await browser.get(f"{API}/inbox")).json()["items"]
    assert [(i["instruction_id"], i["acknowledged_at"]) for i in inbox] == [(instruction["id"], None)]
    # The console sends an empty reply text as "" (the API takes a string).
    acked = await browser.post(
        f"{API}/instructions/{instruction['id']}/ack", json={"text": ""}, headers={"X-CSRF-Token": unit_csrf}
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"

    browser.cookies.set("eqian_session", officer_cookie)
    board = (await browser.get(f"{API}/instructions/{instruction['id']}")).json()["progress"]
    assert (board["acknowledged"], board["total"]) == (1, 3)
    # The board's two lists: who has not acknowledged, and who has.
    pending = (
        await browser.get(f"{API}/instructions/{instruction['id']}/receipts?status=pending&limit=500")
    ).json()
    done = (
        await browser.get(f"{API}/instructions/{instruction['id']}/receipts?status=acknowledged&limit=500")
    ).json()
    assert {r["unit_id"] for r in pending["items"]} == {w.units["a2"], w.units["a3"]}
    assert [r["unit_id"] for r in done["items"]] == [w.units["a1"]]


def test_the_script_and_stylesheet_load_nothing_from_outside() -> None:
    script = (STATIC / "js" / "messaging.js").read_text(encoding="utf-8")
    css = (STATIC / "css" / "messaging.css").read_text(encoding="utf-8")
    # The only absolute URL is the SVG namespace name, which is never fetched.
    assert re.findall(r"https?://[^\s\"')]+", script) == ["http://www.w3.org/2000/svg"]
    assert not re.search(r"https?://|@import|url\(", css)
    # Text reaches the page through textContent only: no innerHTML with data.
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "eval(" not in script
