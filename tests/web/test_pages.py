"""The HTML pages as a browser uses them: login, cookie session + CSRF, scoped pages, headers."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import auth
from eqian.core.accounts import AuthSession
from eqian.core.audit import AuditLog
from eqian.core.config import Settings
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import Unit, UnitCategory
from eqian.web.templating import TEMPLATE_DIRS
from tests.factories import PASSWORD, World, bearer, credit_code, make_world, open_cookie_session, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SESSION_COOKIE = "eqian_session"
LOGIN_CSRF_COOKIE = "eqian_login_csrf"
FULL_PHONE = "13812345678"
MASKED_PHONE = "138****5678"
NAMES = {
    "a1": "织里贝贝童装有限公司",
    "a2": "吾悦广场",
    "a3": "康泰小区物业",
    "b1": "织南安安童装厂",
    "b2": "中通快递织南网点",
}


@pytest.fixture
async def world(db: AsyncSession) -> World:
    return await make_world(db)


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie header of a response, parsed, by cookie name."""
    found: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(header)
        for name in jar:
            found[name] = jar
    return found


def unit_links(page: str) -> dict[int, str]:
    return {
        int(i): html.unescape(name) for i, name in re.findall(r'<a href="/units/(\d+)">([^<]*)</a>', page)
    }


def hidden_field(page: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


def csrf_from_body_attribute(page: str) -> str:
    match = re.search(r"<body hx-headers='([^']*)'>", page)
    assert match, "no hx-headers on <body>"
    headers: dict[str, str] = json.loads(html.unescape(match.group(1)))
    return headers["X-CSRF-Token"]


async def login_form(browser: httpx.AsyncClient, next_url: str = "/units") -> str:
    r = await browser.get("/login", params={"next": next_url})
    assert r.status_code == 200
    return hidden_field(r.text, "csrf_token")


async def cookie_session_count(db: AsyncSession) -> int:
    query = select(func.count()).select_from(AuthSession).where(AuthSession.kind == "cookie")
    return int(await db.scalar(query) or 0)


# --- login ---------------------------------------------------------------------------------------


async def test_unauthenticated_page_redirects_to_login_with_next(
    browser: httpx.AsyncClient, world: World
) -> None:
    r = await browser.get("/units")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/units")
    r = await browser.get("/")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/")
    # An API client asking for JSON gets a 401 it can act on, not a redirect.
    r = await browser.get("/units", headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    assert r.headers["www-authenticate"] == "Bearer"


async def test_login_page_sets_the_login_csrf_cookie_and_hidden_fields(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/login", params={"next": "/units"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    cookie = set_cookies(r)[LOGIN_CSRF_COOKIE][LOGIN_CSRF_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert len(cookie.value) >= 24
    assert hidden_field(r.text, "csrf_token") == cookie.value
    assert hidden_field(r.text, "next") == "/units"
    # A fresh form each time: the token is not a constant.
    again = await browser.get("/login")
    assert hidden_field(again.text, "csrf_token") != cookie.value


async def test_login_with_csrf_and_password_sets_the_session_cookie_and_goes_to_next(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    csrf = await login_form(browser)
    r = await browser.post(
        "/login",
        data={"username": "station_officer", "password": PASSWORD, "csrf_token": csrf, "next": "/units"},
    )
    assert (r.status_code, r.headers["location"]) == (303, "/units")
    cookies = set_cookies(r)
    session = cookies[SESSION_COOKIE][SESSION_COOKIE]
    assert session["httponly"] is True
    assert session["samesite"].lower() == "lax"
    assert session["path"] == "/"
    assert int(session["max-age"]) == Settings(env="test").session_absolute_minutes * 60
    spent = cookies[LOGIN_CSRF_COOKIE][LOGIN_CSRF_COOKIE]
    assert spent["max-age"] == "0"  # the one-time login token is deleted
    row = await db.scalar(select(AuthSession).where(AuthSession.kind == "cookie"))
    assert row is not None
    assert row.user_id == world.users["station_officer"].id
    assert row.token_hash == auth.token_digest(session.value)  # only the digest is stored
    page = await browser.get("/units")
    assert page.status_code == 200
    assert set(unit_links(page.text)) == world.unit_ids("a1", "a2", "a3")


async def test_login_with_a_wrong_or_missing_csrf_token_is_refused(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    csrf = await login_form(browser)
    form = {"username": "station_officer", "password": PASSWORD, "next": "/units"}
    r = await browser.post("/login", data=form | {"csrf_token": csrf[::-1]})
    assert r.status_code == 403
    assert "页面已过期，请重新提交" in r.text
    assert SESSION_COOKIE not in set_cookies(r)
    r = await browser.post("/login", data=form)  # no token at all
    assert r.status_code == 403
    browser.cookies.clear()  # the form's token without its cookie (a cross-site post)
    r = await browser.post("/login", data=form | {"csrf_token": csrf})
    assert r.status_code == 403
    assert SESSION_COOKIE not in set_cookies(r)
    assert await cookie_session_count(db) == 0


async def test_login_with_a_non_ascii_csrf_token_is_a_403_not_a_500(
    browser: httpx.AsyncClient, world: World
) -> None:
    await login_form(browser)
    r = await browser.post(
        "/login", data={"username": "station_officer", "password": PASSWORD, "csrf_token": "令牌"}
    )
    assert r.status_code == 403


async def test_login_with_a_wrong_password_shows_the_error_and_opens_no_session(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    csrf = await login_form(browser)
    r = await browser.post(
        "/login",
        data={
            "username": "station_officer",
            "password": "Wrong-pass-1",
            "csrf_token": csrf,
            "next": "/units",
        },
    )
    assert r.status_code == 401
    assert '<p class="error" role="alert">' + auth.LOGIN_FAILED + "</p>" in r.text
    assert hidden_field(r.text, "next") == "/units"
    assert 'value="station_officer"' in r.text  # the username is kept, the password is not
    assert "Wrong-pass-1" not in r.text
    assert SESSION_COOKIE not in set_cookies(r)
    assert await cookie_session_count(db) == 0
    assert (await browser.get("/units")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example"])
async def test_login_never_redirects_off_site(browser: httpx.AsyncClient, world: World, target: str) -> None:
    page = await browser.get("/login", params={"next": target})
    assert hidden_field(page.text, "next") == "/"
    csrf = hidden_field(page.text, "csrf_token")
    r = await browser.post(
        "/login",
        data={"username": "bureau_admin", "password": PASSWORD, "csrf_token": csrf, "next": target},
    )
    assert (r.status_code, r.headers["location"]) == (303, "/")


def assert_on_site(location: str) -> None:
    # Browsers read "\" as "/" and drop tabs and newlines, so none may follow the first "/".
    assert location.startswith("/"), location
    assert location[1:2] not in ("/", "\\", "\t", "\n", "\r"), location


async def test_login_form_keeps_next_on_site(browser: httpx.AsyncClient) -> None:
    for target in ("http://evil.example/units", "evil.example", "javascript:alert(1)", "///evil.example"):
        page = await browser.get("/login", params={"next": target})
        assert hidden_field(page.text, "next") == "/", target
    page = await browser.get("/login", params={"next": "/units?category=garment"})
    assert hidden_field(page.text, "next") == "/units?category=garment"


async def test_redirect_targets_with_browser_quirks_stay_on_site(browser: httpx.AsyncClient) -> None:
    # The same guard serves every redirect that takes a ``next``; /lang/ needs no login.
    for target in ("/\\evil.example", "/\t/evil.example", "/\n/evil.example", "\\\\evil.example"):
        r = await browser.get("/lang/zh", params={"next": target})
        assert r.status_code == 303
        assert_on_site(r.headers["location"])


async def test_login_redirect_with_a_backslash_stays_on_site(
    browser: httpx.AsyncClient, world: World
) -> None:
    csrf = await login_form(browser)
    r = await browser.post(
        "/login",
        data={
            "username": "bureau_admin",
            "password": PASSWORD,
            "csrf_token": csrf,
            "next": "/\\evil.example",
        },
    )
    assert r.status_code == 303
    assert_on_site(r.headers["location"])


# --- scoped pages --------------------------------------------------------------------------------


async def test_unit_list_shows_only_the_officers_station(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/units")
    assert r.status_code == 200
    assert "<html" in r.text
    assert unit_links(r.text) == {world.units[k]: NAMES[k] for k in ("a1", "a2", "a3")}
    assert '<strong id="result-total">3</strong>' in r.text
    for label in ("b1", "b2"):
        assert NAMES[label] not in r.text
    assert "织南派出所" not in r.text  # nor the other station in the filter select


async def test_unit_list_for_the_other_station_and_a_filter(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer_b"])
    r = await browser.get("/units")
    assert unit_links(r.text) == {world.units[k]: NAMES[k] for k in ("b1", "b2")}
    r = await browser.get("/units", params={"category": "garment"})
    assert unit_links(r.text) == {world.units["b1"]: NAMES["b1"]}
    # Filtering into another station gives nothing, not that station's units.
    r = await browser.get("/units", params={"station_id": world.station_a})
    assert r.status_code == 200
    assert unit_links(r.text) == {}
    assert "没有符合条件的单位" in r.text


async def test_htmx_request_gets_only_the_rows_partial(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/units", params={"q": "吾悦"}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text
    assert "<body" not in r.text
    assert '<table class="list" id="unit-table">' in r.text
    assert unit_links(r.text) == {world.units["a2"]: NAMES["a2"]}
    assert '<strong id="result-total">1</strong>' in r.text


async def test_empty_filter_selects_mean_no_filter(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get(
        "/units?q=&station_id=&category=&service_point_id=&status=", headers={"HX-Request": "true"}
    )
    assert r.status_code == 200
    assert set(unit_links(r.text)) == world.unit_ids("a1", "a2", "a3")
    r = await browser.get("/units", params={"station_id": "abc", "status": "bogus"})
    assert r.status_code == 200
    assert set(unit_links(r.text)) == world.unit_ids("a1", "a2", "a3")


async def test_a_non_ascii_digit_in_a_filter_is_not_a_500(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/units", params={"station_id": "²"})
    assert r.status_code in (200, 422)


@pytest.mark.parametrize("page", ["0", "-1", "abc", "100001"])
async def test_a_bad_page_number_is_a_friendly_422(
    browser: httpx.AsyncClient, db: AsyncSession, world: World, page: str
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/units", params={"page": page})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "返回首页" in r.text
    assert "<code>validation_error</code>" in r.text


async def test_another_stations_unit_is_a_friendly_404_like_a_missing_one(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get(f"/units/{world.units['b1']}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "返回首页" in r.text
    assert NAMES["b1"] not in r.text
    missing_id = max(world.units.values()) + 1000
    missing = await browser.get(f"/units/{missing_id}")
    assert missing.status_code == 404
    # Out of scope and non-existent cannot be told apart (the language link names the path).
    assert missing.text.replace(f"/units/{missing_id}", "/units/N") == r.text.replace(
        f"/units/{world.units['b1']}", "/units/N"
    )


async def test_unit_detail_masks_the_phone(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    a1, c1 = world.units["a1"], world.contacts["a1"]
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get(f"/units/{a1}")
    assert r.status_code == 200
    assert f'<td id="phone-{c1}">{MASKED_PHONE}' in r.text
    assert FULL_PHONE not in r.text
    assert f'hx-post="/units/{a1}/contacts/{c1}/reveal"' in r.text


async def test_roles_without_reveal_see_no_reveal_button(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["unit_security"])
    r = await browser.get(f"/units/{world.units['a1']}")
    assert r.status_code == 200
    assert MASKED_PHONE in r.text
    assert FULL_PHONE not in r.text
    assert "/reveal" not in r.text


async def test_reveal_needs_the_csrf_token_and_is_audited(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    a1, c1 = world.units["a1"], world.contacts["a1"]
    await sign_in(db, browser, world.users["station_officer"])
    page = await browser.get(f"/units/{a1}")
    token = csrf_from_body_attribute(page.text)
    assert hidden_field(page.text, "csrf_token") == token  # the logout form carries the same token
    url = f"/units/{a1}/contacts/{c1}/reveal"

    async def reveals() -> int:
        query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "personal_data.reveal")
        return int(await db.scalar(query) or 0)

    r = await browser.post(url, headers={"HX-Request": "true"})
    assert r.status_code == 403
    assert "<code>csrf_failed</code>" in r.text
    assert FULL_PHONE not in r.text
    r = await browser.post(url, headers={"HX-Request": "true", "X-CSRF-Token": token + "x"})
    assert r.status_code == 403
    assert await reveals() == 0

    r = await browser.post(url, headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 200
    assert f'<span class="revealed">{FULL_PHONE}</span>' in r.text
    assert "<html" not in r.text
    row = await db.scalar(select(AuditLog).where(AuditLog.action == "personal_data.reveal"))
    assert row is not None
    assert (row.actor_id, row.actor_name) == (world.users["station_officer"].id, "station_officer")
    assert (row.entity, row.entity_id) == ("contact", str(c1))
    assert row.changes == {"unit_id": a1, "fields": ["phone"]}
    assert await reveals() == 1


async def test_reveal_by_a_role_without_the_right_is_forbidden_and_not_audited(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    issued = await open_cookie_session(db, browser, world.users["unit_security"])
    r = await browser.post(
        f"/units/{world.units['a1']}/contacts/{world.contacts['a1']}/reveal",
        headers={"X-CSRF-Token": issued.csrf_token},
    )
    assert r.status_code == 403
    assert FULL_PHONE not in r.text
    assert await db.scalar(select(AuditLog).where(AuditLog.action == "personal_data.reveal")) is None


async def test_a_non_ascii_csrf_header_is_a_403_not_a_500(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.post(
        f"/units/{world.units['a1']}/contacts/{world.contacts['a1']}/reveal",
        headers=[(b"X-CSRF-Token", "tök".encode("latin-1"))],
    )
    assert r.status_code == 403


async def test_cookie_session_api_writes_need_csrf_but_bearer_writes_do_not(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    a1 = world.units["a1"]
    issued = await open_cookie_session(db, browser, world.users["station_officer"])

    async def employees() -> int:
        return int(await db.scalar(select(Unit.employee_count).where(Unit.id == a1)) or 0)

    r = await browser.patch(f"/api/v1/units/{a1}", json={"employee_count": 77})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "csrf_failed"
    assert await employees() == 50
    r = await browser.patch(
        f"/api/v1/units/{a1}", json={"employee_count": 77}, headers={"X-CSRF-Token": issued.csrf_token}
    )
    assert (r.status_code, r.json()["employee_count"]) == (200, 77)
    # A bearer token is not sent automatically by a browser, so it needs no CSRF token.
    headers = await bearer(db, world.users["station_officer"])
    r = await client.patch(f"/api/v1/units/{a1}", json={"employee_count": 78}, headers=headers)
    assert (r.status_code, r.json()["employee_count"]) == (200, 78)
    assert await employees() == 78


async def test_logout_needs_csrf_and_ends_the_session(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    issued = await open_cookie_session(db, browser, world.users["station_officer"])
    page = await browser.get("/units")
    token = hidden_field(page.text, "csrf_token")
    r = await browser.post("/logout")
    assert r.status_code == 403
    assert "<code>csrf_failed</code>" in r.text
    r = await browser.post("/logout", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert (await browser.get("/units")).status_code == 200  # still logged in

    r = await browser.post("/logout", data={"csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert set_cookies(r)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
    row = await db.scalar(select(AuthSession).where(AuthSession.kind == "cookie"))
    assert row is not None
    assert row.revoked_at is not None
    # Even a client that keeps the old cookie is logged out: the session is revoked server-side.
    browser.cookies.set(SESSION_COOKIE, issued.token)
    r = await browser.get("/units")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/units")


async def test_an_idle_cookie_session_expires_after_thirty_minutes(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    issued = await open_cookie_session(db, browser, world.users["station_officer"])

    async def idle_for(minutes: int) -> None:
        then = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
        await db.execute(update(AuthSession).values(last_seen_at=then))
        auth.resolved_sessions.clear()  # minutes pass: nothing resolved seconds ago is still kept

    await idle_for(29)
    assert (await browser.get("/units")).status_code == 200
    seen = await db.scalar(select(AuthSession.last_seen_at))
    assert seen is not None
    assert dt.datetime.now(dt.UTC) - seen < dt.timedelta(minutes=1)  # activity keeps it alive

    await idle_for(31)
    r = await browser.get("/units")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/units")
    r = await browser.post(
        f"/api/v1/units/{world.units['a1']}/contacts/{world.contacts['a1']}/reveal",
        headers={"X-CSRF-Token": issued.csrf_token},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")


async def test_a_bearer_token_is_not_accepted_as_a_session_cookie(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    headers = await bearer(db, world.users["station_officer"])
    browser.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))
    r = await browser.get("/units")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/units")


async def add_unit_in_new_category(db: AsyncSession, world: World, category_name: str) -> None:
    db.add(UnitCategory(code="odd", name_zh=category_name, name_en="Odd", sort_order=99))
    await db.flush()
    db.add(
        Unit(
            name="新类别单位",
            credit_code=credit_code(),
            category_code="odd",
            station_id=world.station_a,
            address="织里镇",
            employee_count=1,
        )
    )
    await db.commit()


async def test_category_names_from_the_database_are_escaped(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await add_unit_in_new_category(db, world, "<i>特种</i>")
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/units", params={"category": "odd"})
    assert r.status_code == 200
    assert "&lt;i&gt;特种&lt;/i&gt;" in r.text
    assert "<i>特种</i>" not in r.text


async def test_a_percent_sign_in_a_category_name_is_not_a_500(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await add_unit_in_new_category(db, world, "100%纯棉")
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/units", params={"category": "odd"})
    assert r.status_code == 200
    assert "100%纯棉" in r.text


# --- stations and home ---------------------------------------------------------------------------


def category_counts(page: str, station_id: int) -> dict[str, int]:
    rows = re.findall(
        rf'<a href="/units\?station_id={station_id}&category=(\w+)">[^<]*</a></td><td class="num">(\d+)</td>',
        page,
    )
    return {code: int(n) for code, n in rows}


async def test_station_overview_category_counts_add_up(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get(f"/stations/{world.station_a}")
    assert r.status_code == 200
    assert "<h1>织北派出所</h1>" in r.text
    counts = category_counts(r.text, world.station_a)
    assert list(counts) == [c.code for c in CATEGORIES]  # every category, zero counts included
    assert {k: v for k, v in counts.items() if v} == {"garment": 1, "market": 1, "property": 1}
    shown = re.search(r'<h2>单位</h2><p class="big">(\d+)</p>', r.text)
    assert shown is not None
    assert sum(counts.values()) == int(shown.group(1)) == 3
    assert "大港路服务点" in r.text
    assert "珍贝路服务点" not in r.text


async def test_station_overview_counts_only_what_the_viewer_may_see(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["liaison_officer"])  # assigned to a1 only
    r = await browser.get(f"/stations/{world.station_a}")
    assert r.status_code == 200
    counts = category_counts(r.text, world.station_a)
    assert {k: v for k, v in counts.items() if v} == {"garment": 1}
    assert re.search(r'<h2>单位</h2><p class="big">1</p>', r.text)


async def test_another_station_overview_is_a_404(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get(f"/stations/{world.station_b}")
    assert r.status_code == 404
    assert "返回首页" in r.text
    assert "织南派出所" not in r.text


async def test_home_lists_the_officers_station(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["station_officer"])
    r = await browser.get("/")
    assert r.status_code == 200
    assert '<strong id="unit-total">3</strong>' in r.text
    assert f'href="/stations/{world.station_a}"' in r.text
    assert f'href="/stations/{world.station_b}"' not in r.text


async def test_mediator_sees_no_units_and_no_station(
    browser: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    await sign_in(db, browser, world.users["mediator"])
    r = await browser.get("/units")
    assert r.status_code == 200
    assert unit_links(r.text) == {}
    assert '<strong id="result-total">0</strong>' in r.text
    r = await browser.get("/")
    assert r.status_code == 200
    assert "您的账号暂无可查看的派出所。" in r.text
    assert '<strong id="unit-total">0</strong>' in r.text
    assert "/stations/" not in r.text


# --- headers -------------------------------------------------------------------------------------


def assert_security_headers(r: httpx.Response) -> None:
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp


async def test_security_and_cache_headers(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    login = await browser.get("/login")
    assert_security_headers(login)
    assert login.headers["cache-control"] == "no-store"
    await sign_in(db, browser, world.users["station_officer"])
    for url in ("/units", f"/units/{world.units['a1']}", f"/units/{world.units['b1']}", "/"):
        r = await browser.get(url)
        assert r.status_code in (200, 404), url
        assert_security_headers(r)
        assert r.headers["cache-control"] == "no-store", url
    headers = await bearer(db, world.users["station_officer"])
    for r in (
        await client.get("/api/v1/units", headers=headers),
        await client.get(f"/api/v1/units/{world.units['a1']}", headers=headers),
        await client.get("/api/v1/units"),  # 401
    ):
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
    for path in ("/static/css/eqian.css", "/static/vendor/htmx-2.0.11.min.js"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert "no-store" not in r.headers.get("cache-control", "")
        assert r.headers["x-content-type-options"] == "nosniff"


def test_templates_need_nothing_the_csp_forbids() -> None:
    """The CSP allows only same-origin scripts and styles: no inline code, handlers or style attributes."""
    templates = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html")]
    assert len(templates) >= 9
    for path in templates:
        text = path.read_text(encoding="utf-8")
        # A JSON data block (type="application/json") is never executed, so CSP has no say in it.
        assert not re.search(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))", text), path
        assert not re.search(r"\son[a-z]+=", text), path
        assert not re.search(r"\sstyle=", text), path
        assert "<style" not in text, path
        assert not re.search(r'(?:src|href)="(?:https?:)?//', text), path  # air-gapped: nothing external
