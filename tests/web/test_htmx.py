"""htmx requests whose session is gone are sent to the login page as a whole, not into a fragment."""

from __future__ import annotations

import httpx


async def test_expired_session_on_htmx_request_redirects_the_whole_page(client: httpx.AsyncClient) -> None:
    client.cookies.set("eqian_session", "expired")
    r = await client.get("/units", params={"q": "织里"}, headers={"HX-Request": "true"})
    assert r.status_code == 401
    assert r.headers["HX-Redirect"] == "/login?next=/units"
    assert r.text == ""


async def test_expired_session_on_a_page_redirects_to_login(client: httpx.AsyncClient) -> None:
    client.cookies.set("eqian_session", "expired")
    r = await client.get("/units", headers={"Accept": "text/html"})
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/units")
