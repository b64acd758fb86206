"""Real servers for the WebSocket tests: uvicorn subprocesses on the test database.

With ``EQIAN_TEST_REDIS_URL`` two workers share Redis pub/sub (a client on one hears a message sent
through the other); without it one worker runs with the in-process broker, unless
``EQIAN_REQUIRE_REDIS=1`` demands Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

REDIS_URL = os.environ.get("EQIAN_TEST_REDIS_URL", "")
if os.environ.get("EQIAN_REQUIRE_REDIS") == "1" and not REDIS_URL:
    raise RuntimeError("EQIAN_REQUIRE_REDIS=1 but EQIAN_TEST_REDIS_URL is not set")


STATE: dict[str, str] = {}  # the Redis URL (with its private topic prefix) the servers share


def _start(database_url: str, var: Path, redis_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQIAN_")}
    env |= {
        "EQIAN_DATABASE_URL": database_url,
        "EQIAN_VAR_DIR": str(var),
        "EQIAN_SECRET_KEY": "test-secret",
        "EQIAN_OUTBOX_POLL_SECONDS": "0",
        "EQIAN_LOG_LEVEL": "WARNING",
        "EQIAN_ENV_FILE": str(var / "none.env"),
    }
    if redis_url:
        env["EQIAN_REDIS_URL"] = redis_url
    port = free_port()
    log = (var / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "uvicorn",
            "eqian.web.main:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    return proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def ws_servers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """``host:port`` of each worker (two with Redis, else one)."""
    var = tmp_path_factory.mktemp("ws-var")
    redis = ""
    if REDIS_URL:
        sep = "&" if "?" in REDIS_URL else "?"
        redis = f"{REDIS_URL}{sep}prefix=test-{uuid.uuid4().hex[:12]}"
    STATE["redis"] = redis
    url = database_url
    procs = [_start(url, var, redis) for _ in range(2 if redis else 1)]
    try:
        for proc, addr in procs:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://{addr}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    logs = "\n".join(p.read_text() for p in var.glob("server-*.log"))
                    pytest.fail(f"server did not start: {logs}")
                time.sleep(0.2)
        yield [addr for _, addr in procs]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(timeout=10)
