"""The soak of issue 8 §11 at CI size: ``bench/soak.py``'s mixed load (intake, messaging over
WebSocket with acknowledgements, cookie-session pages, API reads, the safety index job) on two
uvicorn workers over PostgreSQL and Redis with the demo town seeded, with the same verdict as the
full 10-minute run: no error of any kind and the workers' RSS at the end within 10 % of the RSS
after the warm-up.

``EQIAN_SOAK_SECONDS`` sets the length (default 40 s, of which a quarter is warm-up); the recorded
full run is ``python bench/soak.py`` (10 minutes). Needs PostgreSQL (EQIAN_TEST_PG_URL; a database
``<name>_soak`` is created and dropped) and Redis.
"""

from __future__ import annotations

import os

import pytest
from bench import soak
from sqlalchemy import make_url

PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
SECONDS = float(os.environ.get("EQIAN_SOAK_SECONDS", "40"))

pytestmark = pytest.mark.skipif(
    not PG_URL and os.environ.get("EQIAN_REQUIRE_PG") != "1",
    reason="needs PostgreSQL and Redis (EQIAN_TEST_PG_URL)",
)


async def test_mixed_load_on_two_workers_has_no_errors_and_no_memory_growth() -> None:
    name = f"{make_url(PG_URL).database}_soak"
    admin = make_url(PG_URL).set(database="").render_as_string(hide_password=False)
    lines: list[str] = []
    result = await soak.soak(
        admin,
        name,
        seconds=SECONDS,
        warmup=SECONDS / 4,
        # The index job runs once, mid-run, as it would in the full run every minute.
        index_every=SECONDS,
        # A smaller district than the town of the full run: the seed is setup, not what is measured.
        units=int(os.environ.get("EQIAN_SOAK_UNITS", "200")),
        print_fn=lines.append,
    )
    print("\n" + "\n".join(lines))
    assert result["errors"] == 0, lines
    assert result["rss_growth_pct"] <= soak.MAX_GROWTH * 100, result
    # Every kind of load really ran.
    for kind in ("intake", "page", "api_read", "instruction", "ws_ack", "index_job"):
        assert result["requests"].get(kind, 0) > 0, (kind, result["requests"])
