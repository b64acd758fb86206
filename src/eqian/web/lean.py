"""A route FastAPI declares and documents, whose parameters are resolved without its solver.

FastAPI resolves an endpoint's parameters on every request through ``solve_dependencies``: a
recursive walk over the dependency tree with a cache, an exit stack and a validation pass per
parameter. For ``POST /api/v1/incidents``, the path that integrations and the 110 feed drive at a
thousand requests a second (issue 4 §9), that walk cost about a fifth of a worker's CPU per
incident (``bench/intake_cpu.py``; ``docs/benchmarks.md``). ``LeanRoute`` keeps everything the
declaration gives — path, OpenAPI operation, body size limit, the app's exception handlers — and
resolves the few kinds of parameter such an endpoint has directly, in FastAPI's order and with
FastAPI's own validation of the body and headers, so that answers, good or bad, are the same:

1. the body is read and decoded (an undecodable JSON body is 422 ``json_invalid`` before anything else);
2. the dependencies, in the order declared: ``get_db`` (the request's session, closed after the
   endpoint) and ``get_principal`` (``deps.authenticate``: bearer token or cookie with CSRF);
3. header parameters and the body model, their errors together in one 422;
4. the endpoint itself, called with the values, which must return a ``Response``.

Any other kind of parameter or dependency is refused when the route is declared, not served
differently. ``tests/web/test_lean.py`` asks a lean and an ordinary route the same questions.
"""

from __future__ import annotations

import contextlib
import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from eqian.web import deps

_KNOWN = (deps.get_db, deps.get_principal)


class LeanRoute(APIRoute):
    """Use as ``router.add_api_route(..., route_class_override=LeanRoute)`` (see the module)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        unsupported = [
            name
            for name, present in (
                ("path parameters", d.path_params),
                ("query parameters", d.query_params),
                ("cookie parameters", d.cookie_params),
                ("route dependencies", self.dependencies),
                ("more than one body parameter", len(d.body_params) > 1),
                ("a form body", _is_form(self)),
                ("the response object", d.response_param_name),
                ("background tasks", d.background_tasks_param_name),
            )
            if present
        ]
        unsupported += [f"dependency {sub.call!r}" for sub in d.dependencies if sub.call not in _KNOWN]
        if unsupported:
            raise TypeError(f"LeanRoute {path}: not supported: {', '.join(unsupported)}")

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self._handle

    async def _handle(self, request: Request) -> Response:
        d = self.dependant
        body = await _read_body(self, request)
        async with contextlib.AsyncExitStack() as stack:
            values: dict[str, Any] = {}
            if d.request_param_name:
                values[d.request_param_name] = request
            for sub in d.dependencies:
                name = str(sub.name)
                if sub.call is deps.get_db:
                    values[name] = await stack.enter_async_context(
                        contextlib.asynccontextmanager(deps.get_db)(request)
                    )
                else:  # deps.get_principal
                    resolved = await deps.authenticate(request, deps.bearer_token(request))
                    values[name] = resolved.principal
            headers, errors = request_params_to_args(d.header_params, request.headers)
            values.update(headers)
            if self.body_field is not None:
                body_values, body_errors = await request_body_to_args(
                    d.body_params, body, self._embed_body_fields
                )
                values.update(body_values)
                errors += body_errors
            if errors:
                raise RequestValidationError(errors, body=body)
            response = await self.endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"LeanRoute {self.path}: the endpoint must return a Response")
        return response


def _is_form(route: APIRoute) -> bool:
    return route.body_field is not None and isinstance(route.body_field.field_info, params.Form)


async def _read_body(route: APIRoute, request: Request) -> Any:
    """The body as FastAPI hands it to validation: decoded JSON when the content type says JSON (or
    is missing and the route is not strict about it), the bytes otherwise, undefined when empty."""
    if route.body_field is None:
        return PydanticUndefined
    try:
        raw = await request.body()
    except ClientDisconnect as exc:  # as FastAPI answers it (a body over the limit is the
        # limit's own error: it passes to the wrapper FastAPI put around this route)
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    if not raw:
        return PydanticUndefined  # "Field required", as FastAPI says of a missing body
    content_type = request.headers.get("content-type")
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        is_json = message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        )
    else:
        is_json = not _strict(route)
    if not is_json:
        return raw
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:  # FastAPI answers any other failure to decode so
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ],
            body=exc.doc,
        ) from exc


def _strict(route: APIRoute) -> bool:
    value = route.strict_content_type
    return bool(getattr(value, "value", value))
