"""The router every domain declares its routes on: FastAPI's, with a cheap "none of mine" answer.

An application router tries its included routers in order, and FastAPI (0.165) asks each of them
to try every one of its routes, with a few dictionary operations on the request's scope per route.
With about 200 routes that is 0.3 ms of a worker's time for a request to a router near the end
(the incident intake among them, `docs/benchmarks.md`) and for every page that is not found. A
``Router`` first compares the path with the literal beginning of each of its routes (the text
before the first ``{``) in one ``str.startswith`` call and answers "no match" at once when none
fits, which is exactly what trying them would answer. Whatever it cannot judge — a router
included inside it, a request under a ``root_path`` — goes the ordinary way.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import BaseRoute, Match
from starlette.types import Scope


def literal_head(path: str) -> str:
    """The part of a route's path before its first parameter: "/api/v1/units/{id}" -> "/api/v1/units/"."""
    return path.partition("{")[0]


class Router(APIRouter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: tuple[str, ...] | None = None
        self._heads_of = -1  # len(self.routes) when _heads was computed

    def heads(self) -> tuple[str, ...] | None:
        """Every route's literal head, or None when a route has no path of its own to judge by."""
        if self._heads_of != len(self.routes):
            # routes added with router.frontend() are matched apart from self.routes
            self._heads = None if getattr(self, "_low_priority_routes", None) else _heads_of(self.routes)
            self._heads_of = len(self.routes)
        return self._heads

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        heads = self.heads()
        if heads is not None and not scope.get("root_path") and not scope["path"].startswith(heads):
            return Match.NONE, {}
        return super().matches(scope)


def _heads_of(routes: list[BaseRoute]) -> tuple[str, ...] | None:
    heads = []
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str):  # an included router: its paths are its own business
            return None
        heads.append(literal_head(path))
    return tuple(heads)
