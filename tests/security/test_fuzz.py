"""Schemathesis over the whole OpenAPI document, as every role and anonymously (issue 8 §3).

Every operation gets ``EQIAN_FUZZ_EXAMPLES`` valid examples, each sent as every caller, and as many
invalid ones, sent as the bureau and a unit; path ids come from real rows of station A, of station B
and from the schema.
A response must not be a 5xx, must use a documented status with a body that matches its schema,
and must not accept what should be refused: invalid input (schemathesis' negative-data check), any
request without credentials, a row outside the caller's scope, or a write the role may not make.

The app runs on the test's event loop (where its engine lives); Hypothesis runs in a worker thread
and hands each request back to that loop, so shrinking and stateful runs work unchanged.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession

import requests
from eqian.core.config import Settings
from eqian.web.app import create_app
from tests.security.fuzz_world import FuzzWorld, make_fuzz_world

EXAMPLES = int(os.environ.get("EQIAN_FUZZ_EXAMPLES", "1"))
STATEFUL_RUNS = max(3, EXAMPLES)
BASE = "http://testserver"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]
# Invalid input is sent as the roles that can write the most (the bureau everywhere, a unit's own
# staff to its own rows); as the others it would only meet the same refusals as valid input does.
NEGATIVE_CALLERS = ("bureau_admin", "unit_security")
LOG = os.environ.get("EQIAN_FUZZ_LOG")  # one line per operation and mode, for long runs
# The full profile sends each example as one caller in turn (100 examples reach every role ~14 times)
# instead of as every caller, which would take hours on two cores.
ROTATE = os.environ.get("EQIAN_FUZZ_ROTATE") == "1"
ONLY = os.environ.get("EQIAN_FUZZ_ONLY", "")  # fuzz only operations whose label contains this
# Every API route may refuse with these, always in the one error envelope (docs/architecture.md,
# "Errors"); the document is given them here so the envelope itself is validated on every refusal.
REFUSALS = ("400", "401", "403", "404", "405", "409", "413", "415", "422", "429")
ENVELOPE = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array"},
            },
        }
    },
}


def fuzz_schema(app: FastAPI) -> Any:
    doc = copy.deepcopy(app.openapi())
    doc.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = ENVELOPE
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    for path, operations in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in REFUSALS:
                responses[code] = {"description": "refused", **ref}
    return schemathesis.openapi.from_dict(doc)


def valid_create(method: str, path: str, world: FuzzWorld) -> dict[str, Any] | None:
    """A body the service accepts for a chain's create, inside station A, or None."""
    refs = world.own_refs
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("post", "/api/v1/incidents"): {
            "description": "厂门口两名工人因拖欠工资争吵",
            "station_id": refs["station_id"],
        },
        ("post", "/api/v1/requests"): {
            "kind": "other",
            "title": "门口路灯坏了",
            "body": "请协调",
            "unit_id": refs["unit_id"],
        },
        ("post", "/api/v1/messaging/instructions"): {
            "channel_id": refs["channel_id"],
            "title": "春季安全检查",
            "deadline": deadline,
        },
    }
    body = bodies.get((method, path))
    return dict(body) if body is not None else None


# Stateful chains: a created object's id feeds the operations that read and move it (OpenAPI links,
# which schemathesis follows in its state machine).
CHAINS: dict[tuple[str, str], tuple[str, list[tuple[str, str]]]] = {
    ("post", "/api/v1/incidents"): (
        "incident_id",
        [
            ("get", "/api/v1/incidents/{incident_id}"),
            ("post", "/api/v1/incidents/{incident_id}/triage"),
            ("post", "/api/v1/incidents/{incident_id}/transition"),
            ("post", "/api/v1/incidents/{incident_id}/link"),
        ],
    ),
    ("post", "/api/v1/mediation/cases"): (
        "case_id",
        [
            ("get", "/api/v1/mediation/cases/{case_id}"),
            ("post", "/api/v1/mediation/cases/{case_id}/assign"),
            ("post", "/api/v1/mediation/cases/{case_id}/sessions"),
            ("post", "/api/v1/mediation/cases/{case_id}/outcome"),
        ],
    ),
    ("post", "/api/v1/requests"): (
        "request_id",
        [
            ("get", "/api/v1/requests/{request_id}"),
            ("post", "/api/v1/requests/{request_id}/route"),
            ("post", "/api/v1/requests/{request_id}/reply"),
            ("post", "/api/v1/requests/{request_id}/resolve"),
            ("post", "/api/v1/requests/{request_id}/rate"),
        ],
    ),
    ("post", "/api/v1/messaging/instructions"): (
        "instruction_id",
        [
            ("get", "/api/v1/messaging/instructions/{instruction_id}"),
            ("get", "/api/v1/messaging/instructions/{instruction_id}/receipts"),
            ("post", "/api/v1/messaging/instructions/{instruction_id}/ack"),
            ("post", "/api/v1/messaging/instructions/{instruction_id}/read"),
        ],
    ),
    ("post", "/api/v1/messaging/assistance"): (
        "assistance_id",
        [
            ("get", "/api/v1/messaging/assistance/{assistance_id}"),
            ("post", "/api/v1/messaging/assistance/{assistance_id}/replies"),
            ("post", "/api/v1/messaging/assistance/{assistance_id}/close"),
        ],
    ),
}


def stateful_schema(app: FastAPI) -> Any:
    """The chains' operations only, with links from each create to what follows it."""
    full = fuzz_schema(app).raw_schema
    doc = {k: v for k, v in full.items() if k != "paths"}
    doc["paths"] = {}
    for (method, path), (_, targets) in CHAINS.items():
        for m, p in [(method, path), *targets]:
            doc["paths"].setdefault(p, {})[m] = copy.deepcopy(full["paths"][p][m])
    for (method, path), (param, targets) in CHAINS.items():
        created = doc["paths"][path][method]["responses"]["201"]
        created["links"] = {
            f"{m}:{p}": {
                "operationId": doc["paths"][p][m]["operationId"],
                "parameters": {param: "$response.body#/id"},
            }
            for m, p in targets
        }
    return schemathesis.openapi.from_dict(doc)


def operations(schema: Any) -> Iterator[Any]:
    # Account administration last: a fuzzed PATCH or password reset of a world user (their ids are
    # small) would end or change the callers' sessions and roles for every operation after it.
    found = [result.ok() for result in schema.get_all_operations()]
    yield from sorted(found, key=lambda op: op.path.startswith("/api/v1/users"))


class Bridge:
    """Sends requests built in Hypothesis' thread on the loop that owns the app and its engine."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def send(self, case: Any, headers: dict[str, str]) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url=BASE, headers=headers)
        kwargs.pop("auth", None)
        allowed = {"method", "url", "headers", "params", "json", "data", "files", "cookies"}
        prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in allowed}).prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        assert prepared.method
        assert prepared.url
        return self.run(
            self.client.request(prepared.method, prepared.url, headers=dict(prepared.headers), content=body)
        )


def _strategy(operation: Any, mode: GenerationMode, world: FuzzWorld) -> Any:
    choices = [operation.as_strategy(generation_mode=mode)]
    for ids in world.path_ids(operation.path):
        choices.append(operation.as_strategy(generation_mode=mode, path_parameters=ids))
    return st.one_of(choices)


@dataclass
class Tally:
    examples: int = 0
    requests: int = 0
    unsatisfiable: list[str] = field(default_factory=list)  # operations with nothing to make invalid
    statuses: Counter[int] = field(default_factory=Counter)


def fuzz_operation(
    bridge: Bridge, world: FuzzWorld, operation: Any, mode: GenerationMode, tally: Tally
) -> list[str]:
    """One Hypothesis run over the operation; each generated case is sent as every caller."""
    checks = NEGATIVE_CHECKS if mode == GenerationMode.NEGATIVE else CHECKS

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, world))
    def run(case: Any) -> None:
        tally.examples += 1
        callers = world.callers if mode == GenerationMode.POSITIVE else list(NEGATIVE_CALLERS)
        if ROTATE:
            callers = [callers[tally.examples % len(callers)]]
        for caller in callers:
            headers = world.headers_for(caller, operation, bridge)
            response = bridge.send(case, headers)
            tally.requests += 1
            tally.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except FailureGroup as group:
                reason = "\n".join(map(str, group.exceptions))
                raise AssertionError(f"as {caller}: {reason}\n{case.as_curl_command(headers)}") from None
            except AssertionError as exc:
                raise AssertionError(f"as {caller}: {exc}\n{case.as_curl_command(headers)}") from None
            refusal = world.must_refuse(caller, operation, case, response)
            assert refusal is None, f"{refusal}\n{case.as_curl_command(headers)}"

    before = (tally.examples, tally.requests)
    try:
        run()
    except Unsatisfiable:
        tally.unsatisfiable.append(f"{mode.value} {operation.label}")
    except Exception as exc:  # collected so one run reports every operation that fails
        _log(f"FAIL {mode.value} {operation.label}")
        return [f"{mode.value} {operation.label}: {exc}"]
    finally:
        _log(f"{mode.value} {operation.label} {tally.examples - before[0]} {tally.requests - before[1]}")
    return []


def _log(line: str) -> None:
    if LOG:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@pytest.fixture(scope="module")
async def fuzz_app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    """The app as in production but without rate limits, which would answer most of the fuzzer's
    writes with 429 before they reach the code under test (the limiter has tests of its own)."""
    settings = Settings(
        env="test",
        database_url=database_url,
        var_dir=tmp_path_factory.mktemp("fuzz-var"),
        secret_key="test-secret",
        outbox_poll_seconds=0,
        rate_limit_enabled=False,
    )
    application = create_app(settings)
    yield application
    await application.state.engine.dispose()


async def test_every_operation_as_every_caller(fuzz_app: FastAPI, db: AsyncSession) -> None:
    schema = fuzz_schema(fuzz_app)
    loop = asyncio.get_running_loop()
    tally = Tally()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fuzz_app), base_url=BASE) as client:
        world = await make_fuzz_world(db, client)
        bridge = Bridge(client, loop)

        def run_all() -> list[str]:
            failures: list[str] = []
            for operation in operations(schema):
                if ONLY not in operation.label:
                    continue
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    failures += fuzz_operation(bridge, world, operation, mode, tally)
            return failures

        failures = await asyncio.to_thread(run_all)
    count = len(list(operations(schema)))
    print(f"fuzz: {count} operations, {tally.examples} examples, {tally.requests} requests")
    print(f"fuzz: statuses {sorted(tally.statuses.items())}, nothing to negate: {len(tally.unsatisfiable)}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("caller", ["station_officer", "bureau_admin"])
async def test_stateful_chains(fuzz_app: FastAPI, db: AsyncSession, caller: str) -> None:
    """Create → read → move on, following links with the created ids, as each role that writes."""
    schema = stateful_schema(fuzz_app)
    loop = asyncio.get_running_loop()
    steps = Counter[int]()
    created: set[tuple[str, int]] = set()  # (path parameter, id) of each object the chains made
    followed: list[str] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fuzz_app), base_url=BASE) as client:
        world = await make_fuzz_world(db, client)
        bridge = Bridge(client, loop)
        machine = schema.as_state_machine()

        class Chains(machine):  # type: ignore[misc,valid-type]
            def call(self, case: Any, **kwargs: Any) -> schemathesis.Response:
                valid = valid_create(case.method.lower(), case.operation.path, world)
                if valid is not None:
                    # A chain's first step is a create the service accepts: with only generated
                    # bodies, 30 steps sometimes made none (the walk changes with what ran before
                    # on the xdist worker) and the chains then followed nothing. Create bodies are
                    # fuzzed by test_every_operation_as_every_caller.
                    case.body = valid
                if isinstance(case.body, dict):
                    # References inside the caller's scope, so creates succeed and the chain goes on.
                    for key, value in world.own_refs.items():
                        if key in case.body:
                            case.body[key] = value
                response = bridge.send(case, world.headers[caller])
                steps[response.status_code] += 1
                if set((case.path_parameters or {}).items()) & created:
                    followed.append(case.operation.label)
                chain = CHAINS.get((case.method.lower(), case.operation.path))
                if chain is not None and response.status_code == 201:
                    created.add((chain[0], response.json()["id"]))
                refusal = world.must_refuse(caller, case.operation, case, response)
                assert refusal is None, refusal
                return schemathesis.Response.from_any(response)

            def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
                case.validate_response(response, checks=CHECKS, headers=world.headers[caller])

        run_settings = settings(
            max_examples=STATEFUL_RUNS,
            stateful_step_count=10,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        await asyncio.to_thread(Chains.run, settings=run_settings)
    # The chains must actually have created objects and followed them, or the test proves nothing.
    assert created, steps
    assert followed, steps


async def test_inputs_the_fuzzer_found_are_refused(fuzz_app: FastAPI, db: AsyncSession) -> None:
    """Regressions of what the full profile found, pinned so a change of examples cannot lose them."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fuzz_app), base_url=BASE) as client:
        world = await make_fuzz_world(db, client)
        officer = world.headers["bureau_admin"]
        activity = world.ids["activity_id"][0]
        # A unit id beyond the database's integer was a 500 (OverflowError in the driver).
        r = await client.post(
            f"/api/v1/activities/{activity}/invitations", json={"unit_ids": [2**40]}, headers=officer
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["field"].startswith("unit_ids")
        # Pydantic read 0 as 1970-01-01 and a date-time as a date: both were stored.
        person = world.ids["person_id"][0]
        for value in (0, "2024-05-01T13:00:00"):
            r = await client.put(
                f"/api/v1/workers/persons/{person}/residence",
                json={"status": "registered", "registered_on": value},
                headers=officer,
            )
            assert r.status_code == 422, (value, r.text)
            assert r.json()["error"]["details"][0]["field"] == "registered_on"
        r = await client.put(
            f"/api/v1/workers/persons/{person}/residence",
            json={"status": "registered", "registered_on": "2024-05-01"},
            headers=officer,
        )
        assert r.status_code == 200, r.text
