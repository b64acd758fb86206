"""eqian.web.routing.Router answers "no match" early only where trying its routes would say the same."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from starlette.routing import BaseRoute, Match

from eqian.web.routing import Router, literal_head


def _routers(routes: list[BaseRoute]) -> list[BaseRoute]:
    return [r for r in routes if getattr(r, "original_router", None) is not None]


def _paths(app: FastAPI) -> set[str]:
    """A concrete path for every route template the application serves (parameters filled with 1)."""
    templates = set(app.openapi()["paths"]) | {r.path for r in app.router.routes if hasattr(r, "path")}

    def walk(router: object) -> None:
        for r in getattr(router, "routes", []):
            if hasattr(r, "path"):
                templates.add(r.path)
            walk(getattr(r, "original_router", None))

    for r in _routers(app.router.routes):
        walk(r.original_router)  # type: ignore[attr-defined]
    return {re.sub(r"\{[^}]*\}", "1", t) for t in templates}


def test_literal_head() -> None:
    assert literal_head("/api/v1/units/{unit_id}/reveal") == "/api/v1/units/"
    assert literal_head("/incidents") == "/incidents"
    assert literal_head("/{path:path}") == "/"


def test_every_router_of_the_app_is_ours(app: FastAPI) -> None:
    """A domain router declared with FastAPI's own APIRouter would be tried route by route again."""
    included = _routers(app.router.routes)
    assert len(included) > 20
    assert all(isinstance(r.original_router, Router) for r in included)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_the_guard_never_changes_a_match(app: FastAPI, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    paths = _paths(app)
    assert len(paths) > 150
    odd = {"/", "/nowhere", "/api/v1/incidentsX", "/api/v2/units"}
    probes = sorted(paths | {p + "/" for p in paths} | odd)
    methods = ["GET", "POST", "DELETE"] if kind == "http" else [None]

    def outcomes() -> list[Match]:
        found = []
        for route in _routers(app.router.routes):
            for path in probes:
                for method in methods:
                    scope = {"type": kind, "path": path, "root_path": "", "headers": [], "query_string": b""}
                    if method:
                        scope["method"] = method
                    found.append(route.matches(scope)[0])
        return found

    consulted = 0
    heads = Router.heads

    def counting(self: Router) -> tuple[str, ...] | None:
        nonlocal consulted
        consulted += 1
        return heads(self)

    monkeypatch.setattr(Router, "heads", counting)
    guarded = outcomes()
    # the guard is consulted for every probe (a FastAPI release that stops calling
    # APIRouter.matches would make it dead code, and this test would say so)
    assert consulted >= len(guarded)
    monkeypatch.setattr(Router, "heads", lambda self: None)
    assert guarded == outcomes()


def test_a_router_with_no_routes_matches_nothing() -> None:
    assert Router().heads() == ()


async def test_unknown_paths_and_methods_are_answered_as_before(client: AsyncClient) -> None:
    assert (await client.get("/api/v1/incidentsX")).status_code == 404
    assert (await client.get("/api/v1/nothing-here")).json()["error"]["code"] == "not_found"
    assert (await client.put("/api/v1/incidents/classify")).status_code == 405
