"""A real server (the CLI's own db upgrade, demo seed and serve) on a free port, and headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eqian.core.config import Settings
from eqian.web.app import create_app
from tests.security.observer import watch_browser
from tests.servers import free_port

CHROMIUM = "/usr/bin/chromium"
DEMO_PASSWORD = "demo-pass-365"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("e2e-var")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQIAN_")}
    env |= {"EQIAN_VAR_DIR": str(var), "EQIAN_DEMO_PASSWORD": DEMO_PASSWORD, "EQIAN_LOG_LEVEL": "WARNING"}
    cli = [sys.executable, "-m", "eqian"]
    if os.environ.get("EQIAN_TEST_SCHEMA") == "create_all":  # development shortcut, see tests/conftest.py
        build = (
            "import sqlalchemy as sa, sys; from eqian.all_models import Base; "
            "Base.metadata.create_all(sa.create_engine(sys.argv[1]))"
        )
        url = f"sqlite:///{var / 'eqian.db'}"
        subprocess.run([sys.executable, "-c", build, url], env=env, check=True, capture_output=True)  # noqa: S603
    else:
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)  # noqa: S603
    subprocess.run([*cli, "demo", "seed", "--units", "400"], env=env, check=True, capture_output=True)  # noqa: S603
    port = free_port()
    log = (var / "server.log").open("w")
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"server did not start: {(var / 'server.log').read_text()}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is required for the browser tests (scripts/ensure-browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        # Every page and JSON answer the browser loads is scanned for unmasked ID numbers and mobiles,
        # and every JSON answer of the API is held to the document (an app built like the server's
        # gives the observer its routes; it never serves).
        var = tmp_path_factory.mktemp("observer-app")
        routes_of = create_app(
            Settings(
                env="test",
                database_url=f"sqlite+aiosqlite:///{var / 'unused.db'}",
                var_dir=var,
                secret_key="x",
            )
        )
        yield watch_browser(b, routes_of)
        b.close()
