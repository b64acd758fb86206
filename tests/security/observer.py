"""A pytest plugin that watches everything the server says during the test run (issue 8 §2 and §5).

- **Route coverage**: the route template and method of every request made through
  ``httpx.ASGITransport`` (and ``/ws`` handshakes seen by the websockets client) are recorded; a full
  run (``EQIAN_ROUTE_COVERAGE=1``, or every test directory collected) fails if a route of the app
  was never exercised.
- **Response validation**: every JSON answer of a route in the OpenAPI document is validated
  against the schema documented for its status; an undocumented status is a violation unless it
  is one of the refusals every route may give (401/403/404/409/413/422/429) in the error envelope.
- **Leak scan**: response bodies (JSON, HTML, CSV, XLSX cell text), WebSocket frames received by
  tests, log records and the logs of the servers tests start are scanned for checksum-valid
  resident ID numbers and mobile numbers. A hit is allowed only in a 2xx answer of an audited
  reveal route, and that answer must have written its ``personal_data.reveal`` audit row.

Under pytest-xdist each worker writes its records to a run directory and the controller merges
them. Register with ``pytest_plugins = ["tests.security.observer"]`` or ``-p tests.security.observer``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.security.leaks import Hit, body_text, scan_text

# Refusals any route may give without declaring them, provided they use the error envelope.
GENERIC_ERRORS = frozenset({401, 403, 404, 409, 413, 422, 429})
# The audited reveal actions: /…/reveal and /…/reveal-phone.
REVEAL_PATH = re.compile(r"/reveal[^/]*$")
REVEAL_ACTION = "personal_data.reveal"
TESTS_ROOT = Path(__file__).resolve().parents[1]
# Directories whose tests run in the browser pass, not in the in-process one judged for coverage.
SEPARATE_RUNS = frozenset({"e2e"})
MAX_LISTED = 60  # problems printed per kind; the rest are counted


@dataclass
class Records:
    routes: set[str] = field(default_factory=set)
    exercised: set[str] = field(default_factory=set)
    collected_dirs: set[str] = field(default_factory=set)
    responses: int = 0
    validated: int = 0
    scanned: int = 0
    frames: int = 0
    log_lines: int = 0
    server_logs: int = 0
    server_log_lines: int = 0
    pages: int = 0
    reveals: int = 0
    reveals_audited: int = 0
    violations: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)
    observer_seconds: float = 0.0  # the observer's own cost, for the CI budget (a figure, not a check)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, set):
                out[key] = sorted(value)
        return out

    def merge(self, data: dict[str, Any]) -> None:
        for f in dataclasses.fields(self):
            mine = getattr(self, f.name)
            theirs = data.get(f.name)
            if theirs is None:
                continue
            if isinstance(mine, set):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, f.name, mine + theirs)


RECORDS = Records()
_current_test = "(outside a test)"


# --- the app's routes and documented responses -------------------------------------------------


@dataclass
class _Route:
    key: str  # "GET /api/v1/units/{unit_id}"
    template: str
    methods: frozenset[str]
    regex: re.Pattern[str] | None


@dataclass
class _AppInfo:
    by_route: dict[int, list[_Route]]
    everything: list[_Route]
    keys: frozenset[str]
    doc: dict[str, Any] | None
    validators: dict[tuple[str, str, str], Any]
    registry: Any


_APPS: weakref.WeakKeyDictionary[Any, _AppInfo] = weakref.WeakKeyDictionary()
# Every app built by create_app documents the same API: compile each schema once per document.
_VALIDATORS: dict[str, tuple[dict[tuple[str, str, str], Any], Any]] = {}
_DOC_URI = "urn:eqian:openapi"


def _route_table(app: Any) -> list[tuple[Any, _Route]]:
    from fastapi.routing import _iter_routes_with_context  # the flattening FastAPI itself routes by
    from starlette.routing import Mount, WebSocketRoute

    table: list[tuple[Any, _Route]] = []
    for route, ctx in _iter_routes_with_context(app.routes):
        template = (ctx.path if ctx is not None and ctx.path else None) or getattr(route, "path", "")
        methods = set(
            (ctx.methods if ctx is not None and ctx.methods else None)
            or getattr(route, "methods", None)
            or ()
        )
        regex = (ctx.path_regex if ctx is not None and ctx.path_regex is not None else None) or getattr(
            route, "path_regex", None
        )
        if isinstance(route, Mount):
            template, methods = f"{template}/{{path}}", {"GET"}
        elif isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            methods = {"WS"}
        if methods != {"HEAD"}:
            methods.discard("HEAD")  # Starlette adds HEAD to every GET; it is not a route of its own
        for method in sorted(methods):
            table.append((route, _Route(f"{method} {template}", template, frozenset({method}), regex)))
    return table


def _shape(app: Any) -> tuple[Any, ...]:
    """Apps built by the same factory include the same module-level routers at the same places:
    they share one route table and one document, so a test's own app costs nothing to observe."""
    shape: list[tuple[str, Any]] = []
    for r in app.routes:
        included = getattr(r, "original_router", None)
        shape.append((type(r).__name__, id(included) if included is not None else getattr(r, "path", "")))
    return tuple(shape)


_SHAPES: dict[tuple[Any, ...], _AppInfo] = {}


def _app_info(app: Any) -> _AppInfo | None:
    try:
        return _APPS[app]
    except KeyError:
        pass
    except TypeError:
        return None
    if not hasattr(app, "routes") or not hasattr(app, "openapi"):
        return None
    shape = _shape(app)
    info = _SHAPES.get(shape)
    if info is None:
        table = _route_table(app)
        by_route: dict[int, list[_Route]] = {}
        for route, entry in table:
            by_route.setdefault(id(route), []).append(entry)
        doc: dict[str, Any] | None = app.openapi()
        fingerprint = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
        everything = [e for _, e in table]
        keys = frozenset(e.key for e in everything)
        if fingerprint not in _VALIDATORS:
            import jsonschema_rs

            _VALIDATORS[fingerprint] = ({}, jsonschema_rs.Registry([(_DOC_URI, doc)]))
        validators, registry = _VALIDATORS[fingerprint]
        info = _AppInfo(by_route, everything, keys, doc, validators, registry)
        _SHAPES[shape] = info
    _APPS[app] = info
    return info


def _match(info: _AppInfo, scope: dict[str, Any], method: str) -> _Route | None:
    path = scope.get("path", "")
    # The routes FastAPI includes are module-level objects shared by every app; the app's own
    # (docs, /healthz, /static) are found by their path.
    for candidates in (info.by_route.get(id(scope.get("route")), []), info.everything):
        for entry in candidates:
            if method in entry.methods and (entry.regex is None or entry.regex.match(path)):
                return entry
    return None


def _documented(info: _AppInfo, template: str, method: str, status: str) -> Any:
    """(compiled JSON schema or None, documented media types) of an answer; None when the status
    is not documented at all."""
    key = (template, method, status)
    if key in info.validators:
        return info.validators[key]
    assert info.doc is not None
    responses = info.doc["paths"][template][method.lower()].get("responses", {})
    documented = responses.get(status) or responses.get(f"{status[0]}XX") or responses.get("default")
    result: Any = None
    if documented is not None:
        content = documented.get("content", {})
        schema = content.get("application/json", {}).get("schema")
        validator = None
        if schema is not None:
            import jsonschema_rs

            # A reference into the document, resolved through one registry per document: each
            # validator then compiles only the schemas it reaches, not all of components.
            pointer = "/".join(
                p.replace("~", "~0").replace("/", "~1")
                for p in (
                    "paths",
                    template,
                    method.lower(),
                    "responses",
                    status,
                    "content",
                    "application/json",
                )
            )
            ref = f"{_DOC_URI}#/{quote(pointer, safe='/~')}/schema"
            validator = jsonschema_rs.Draft202012Validator({"$ref": ref}, registry=info.registry)
        result = (validator, frozenset(content))
    info.validators[key] = result
    return result


def _envelope_problem(data: Any) -> str | None:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return 'not the error envelope {"error": {...}}'
    for name, kind in (("code", str), ("message", str), ("details", list)):
        if not isinstance(error.get(name), kind):
            return f"error.{name} missing or not a {kind.__name__}"
    return None


def _validate(info: _AppInfo, route: _Route, status: int, ctype: str, body: bytes) -> str | None:
    method = next(iter(route.methods))
    if info.doc is None or method.lower() not in info.doc.get("paths", {}).get(route.template, {}):
        return None  # pages and other routes outside the API document
    RECORDS.validated += 1
    is_json = ctype.split(";", 1)[0].strip().lower() == "application/json"
    try:
        data = json.loads(body) if is_json and body else None
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    documented = _documented(info, route.template, method, str(status))
    if documented is None:
        if status in GENERIC_ERRORS:
            return _envelope_problem(data) if is_json else f"refusal is {ctype or 'empty'}, not JSON"
        code = data.get("error", {}).get("code") if isinstance(data, dict) else None
        return "status not documented" + (f" (error.code {code})" if isinstance(code, str) else "")
    validator, media_types = documented
    if status == 204 or not body:
        return None
    media = ctype.split(";", 1)[0].strip().lower()
    if media_types and media not in media_types:
        return f"answered {media or 'without a content type'}, documented {', '.join(sorted(media_types))}"
    if validator is None:
        return None
    errors = [
        f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(data)
    ]
    return "; ".join(errors[:3])[:600] if errors else None


# --- the observation points ----------------------------------------------------------------------


def _leak(where: str, hits: list[Hit]) -> None:
    RECORDS.leaks.extend(f"{_current_test}: {where}: {hit}" for hit in hits)


async def _reveal_audit_seq(app: Any) -> int | None:
    maker = getattr(getattr(app, "state", None), "sessionmaker", None)
    if maker is None:
        return None
    from sqlalchemy import func, select

    from eqian.core.audit import AuditLog

    async with maker() as session:
        return int(await session.scalar(select(func.coalesce(func.max(AuditLog.seq), 0))) or 0)


async def _reveal_audited(app: Any, after_seq: int, entity_id: str) -> bool:
    from sqlalchemy import select

    from eqian.core.audit import AuditLog

    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditLog.entity_id).where(AuditLog.seq > after_seq, AuditLog.action == REVEAL_ACTION)
        )
        return entity_id in set(rows)


async def _observed_request(self: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
    started = time.perf_counter()
    app = self.app
    info = _app_info(app)
    if info is None:
        return await _ORIGINAL_HANDLE(self, request)
    RECORDS.routes.update(info.keys)
    captured: dict[str, Any] = {}

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        captured["scope"] = scope  # the router writes the matched route into this very dict
        await app(scope, receive, send)

    # A copy, not self: tests send concurrent requests through one transport.
    transport = copy.copy(self)
    transport.app = spy
    is_reveal = bool(REVEAL_PATH.search(request.url.path))
    before = await _reveal_audit_seq(app) if is_reveal else None
    served = time.perf_counter()
    response = await _ORIGINAL_HANDLE(transport, request)
    started += time.perf_counter() - served
    parts = getattr(response.stream, "_body", None)
    body = b"".join(parts) if isinstance(parts, list) else await response.aread()
    RECORDS.responses += 1
    scope = captured.get("scope", {})
    route = _match(info, scope, request.method if request.method != "HEAD" else "GET")
    label = f"{request.method} {route.template if route else request.url.path} → {response.status_code}"
    if route is not None:
        if response.status_code < 400:  # a refusal alone does not show that the route works
            RECORDS.exercised.add(route.key)
        problem = _validate(info, route, response.status_code, response.headers.get("content-type", ""), body)
        if problem:
            RECORDS.violations.append(f"{_current_test}: {label}: {problem}")
    text = body_text(response.headers.get("content-type", ""), body)
    if text is not None:
        RECORDS.scanned += 1
        hits = scan_text(text)
        if is_reveal and 200 <= response.status_code < 300:
            RECORDS.reveals += 1
            params = scope.get("path_params") or {}
            entity = str(list(params.values())[-1]) if params else ""
            if before is not None and await _reveal_audited(app, before, entity):
                RECORDS.reveals_audited += 1
            else:
                RECORDS.unaudited.append(f"{_current_test}: {label}: no {REVEAL_ACTION} row for {entity}")
        elif hits:
            _leak(f"response {label}", hits)
    RECORDS.observer_seconds += time.perf_counter() - started
    return response


_ORIGINAL_HANDLE = httpx.ASGITransport.handle_async_request


def _observe_frame(path: str, frame: Any) -> None:
    RECORDS.frames += 1
    RECORDS.exercised.add(f"WS {path}")
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else str(frame)
    hits = scan_text(text)
    if hits:
        _leak(f"WebSocket frame on {path}", hits)


def _patch_websockets() -> None:
    try:
        from websockets.asyncio.client import ClientConnection
    except ImportError:
        return
    original = ClientConnection.recv

    async def recv(self: Any, *args: Any, **kwargs: Any) -> Any:
        frame = await original(self, *args, **kwargs)
        request = getattr(self, "request", None)
        _observe_frame(getattr(request, "path", "/ws").split("?", 1)[0], frame)
        return frame

    ClientConnection.recv = recv  # type: ignore[method-assign]


class _LogScanner(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        RECORDS.log_lines += 1
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not a leak
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n{record.exc_info[1]!r}"
        hits = scan_text(text)
        if hits:
            _leak(f"log {record.name}:{record.levelname}", hits)


def scan_server_log(path: Path) -> None:
    """The log of a server process a test started (uvicorn subprocess): every line is scanned."""
    try:
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return
    RECORDS.server_logs += 1
    RECORDS.server_log_lines += len(lines)
    for number, line in enumerate(lines, 1):
        hits = scan_text(line)
        if hits:
            RECORDS.leaks.extend(f"server log {path.name}:{number}: {hit}" for hit in hits)


def scan_page_html(html: str, where: str) -> list[str]:
    """For the browser tests (a real server in a subprocess, outside the in-process hook): scan the
    HTML a page shows. Pages of reveal actions may show what they reveal; anything else found is
    recorded as a leak (failing the run at its end) and returned."""
    RECORDS.pages += 1
    if REVEAL_PATH.search(where.split("?", 1)[0]):
        return []
    hits = scan_text(html)
    _leak(f"page {where}", hits)
    return [str(hit) for hit in hits]


def watch_browser(browser: Any, app: Any = None) -> Any:
    """Wraps a Playwright browser so that every HTML or JSON answer the pages of its new contexts
    receive (documents, htmx fragments, the scripts' API calls) is scanned, and, given an ``app``
    built like the server's, every JSON answer of a documented route is validated against the
    document as in-process answers are. Returns the browser."""
    original = browser.new_context
    info = _app_info(app) if app is not None else None

    def new_context(*args: Any, **kwargs: Any) -> Any:
        context = original(*args, **kwargs)

        def on_response(response: Any) -> None:
            ctype = response.headers.get("content-type", "")
            # A redirect has no body to read, and asking for one can stall the navigation it starts.
            if not ctype.startswith(("text/html", "application/json")) or 300 <= response.status < 400:
                return
            method = response.request.method
            try:
                body = response.body()
            except Exception:  # a navigation can discard a body before it is read
                return
            if info is not None and ctype.startswith("application/json"):
                path = urlsplit(response.url).path
                route = _match(info, {"path": path}, method if method != "HEAD" else "GET")
                if route is not None:
                    problem = _validate(info, route, response.status, ctype, body)
                    if problem:
                        label = f"browser {method} {route.template} → {response.status}"
                        RECORDS.violations.append(f"{_current_test}: {label}: {problem}")
            if response.status >= 300:
                return
            scan_page_html(body.decode("utf-8", "replace"), f"{method} {response.url}")

        context.on("response", on_response)
        return context

    browser.new_context = new_context
    return browser


# --- pytest hooks --------------------------------------------------------------------------------


def _worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


def pytest_configure(config: pytest.Config) -> None:
    httpx.ASGITransport.handle_async_request = _observed_request  # type: ignore[method-assign]
    _patch_websockets()
    logging.getLogger().addHandler(_LogScanner(logging.DEBUG))
    app_logger = logging.getLogger("eqian")
    if app_logger.getEffectiveLevel() > logging.INFO:
        app_logger.setLevel(logging.INFO)  # production logs at INFO, so the scan must see INFO
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        config.stash[_RUN_DIR] = tempfile.mkdtemp(prefix="eqian-observer-")
    else:
        config.stash[_RUN_DIR] = workerinput.get("eqian_observer_dir", "")


_RUN_DIR = pytest.StashKey[str]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput["eqian_observer_dir"] = node.config.stash[_RUN_DIR]


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        try:
            rel = Path(str(item.path)).resolve().relative_to(TESTS_ROOT)
        except ValueError:
            continue
        if len(rel.parts) > 1:
            RECORDS.collected_dirs.add(rel.parts[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    global _current_test
    _current_test = item.nodeid
    yield
    _current_test = "(outside a test)"


def _scan_server_logs(config: pytest.Config) -> None:
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except OSError:
        return
    for path in sorted(base.glob("**/server*.log")):
        scan_server_log(path)


def _required_dirs() -> set[str]:
    return {p.parent.name for p in TESTS_ROOT.glob("*/test_*.py") if p.parent.name not in SEPARATE_RUNS}


def _judge_coverage(collected: set[str]) -> bool:
    flag = os.environ.get("EQIAN_ROUTE_COVERAGE", "")
    if flag in ("0", "1"):
        return flag == "1"
    return _required_dirs() <= collected


def _verdict(records: Records) -> dict[str, Any]:
    judged = _judge_coverage(records.collected_dirs)
    missing = sorted(records.routes - records.exercised) if judged else []
    return {
        "routes": len(records.routes),
        "routes_exercised": len(records.routes & records.exercised),
        "coverage_judged": judged,
        "missing_routes": missing,
        "responses": records.responses,
        "responses_validated": records.validated,
        "violations": len(records.violations),
        "bodies_scanned": records.scanned,
        "ws_frames": records.frames,
        "log_lines": records.log_lines,
        "server_logs": records.server_logs,
        "server_log_lines": records.server_log_lines,
        "browser_pages": records.pages,
        "leaks": len(records.leaks),
        "reveals": records.reveals,
        "reveals_audited": records.reveals_audited,
        "observer_seconds": round(records.observer_seconds, 2),
    }


_VERDICT = pytest.StashKey[dict[str, Any]]()


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    _scan_server_logs(config)
    run_dir = config.stash.get(_RUN_DIR, "")
    if _worker_id(config) is not None:
        if run_dir:
            Path(run_dir, f"{_worker_id(config)}.json").write_text(json.dumps(RECORDS.to_json()))
        return
    merged = Records()
    merged.merge(RECORDS.to_json())
    for path in sorted(Path(run_dir).glob("*.json")) if run_dir else []:
        merged.merge(json.loads(path.read_text()))
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    verdict = _verdict(merged)
    if dump := os.environ.get("EQIAN_OBSERVER_DUMP"):
        Path(dump).write_text(json.dumps(merged.to_json(), ensure_ascii=False, indent=1))
    config.stash[_VERDICT] = verdict | {
        "violation_list": merged.violations,
        "leak_list": merged.leaks,
        "unaudited_list": merged.unaudited,
    }
    failed = verdict["missing_routes"] or merged.violations or merged.leaks or merged.unaudited
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _listing(tr: Any, title: str, lines: list[str]) -> None:
    if not lines:
        return
    tr.write_sep("-", f"{title} ({len(lines)})", red=True)
    # The same defect seen by many tests is listed once, with how often it was seen.
    counts = Counter(re.sub(r"^[^:]*::[^:]*: ", "", line) for line in lines)
    first = {}
    for line in lines:
        first.setdefault(re.sub(r"^[^:]*::[^:]*: ", "", line), line)
    for n, (key, count) in enumerate(counts.most_common()):
        if n == MAX_LISTED:
            tr.write_line(f"… and {len(counts) - MAX_LISTED} more")
            break
        tr.write_line(f"{first[key]}" + (f"  (×{count})" if count > 1 else ""))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    verdict = config.stash.get(_VERDICT, None)
    if verdict is None:
        return
    tr = terminalreporter
    tr.write_sep("=", "eqian observer: routes, responses, leaks")
    _listing(tr, "routes never exercised", [f"{r}" for r in verdict["missing_routes"]])
    _listing(tr, "responses that differ from the OpenAPI document", verdict["violation_list"])
    _listing(tr, "unmasked ID numbers or mobiles", verdict["leak_list"])
    _listing(tr, "reveals without their audit row", verdict["unaudited_list"])
    figures = {k: v for k, v in verdict.items() if not k.endswith("_list") and k != "missing_routes"}
    tr.write_line(json.dumps(figures, ensure_ascii=False))
