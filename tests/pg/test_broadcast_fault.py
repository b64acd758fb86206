"""kill -9 one of two workers in the middle of a broadcast (issue 3 §9).

Two eqian workers share PostgreSQL and Redis; 200 unit clients are split between them, each knowing
both addresses. The duty officer sends six instructions to the station channel through the worker
that survives; right after the third, the other worker is killed with SIGKILL while it is still
delivering. Its clients reconnect to the survivor and resume from the last seq they saw, resending
acknowledgements that were never confirmed. In the end every client has every message exactly once
(no gap, no duplicate) and every acknowledgement a client sent is stored.

Needs PostgreSQL (EQIAN_TEST_PG_URL; a database ``<name>_fault`` is created and dropped) and Redis:
a private ``redis-server`` when the binary is installed, else EQIAN_TEST_REDIS_URL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
from typing import Any

import httpx
import pytest
from bench import broadcast as harness
from sqlalchemy import make_url, text

from eqian.core.db import make_engine

PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
CLIENTS = 200
MESSAGES = 6
KILL_AFTER = 3

pytestmark = pytest.mark.skipif(
    not PG_URL and os.environ.get("EQIAN_REQUIRE_PG") != "1",
    reason="needs PostgreSQL and Redis (EQIAN_TEST_PG_URL)",
)


def _redis() -> tuple[subprocess.Popen[bytes] | None, str]:
    if shutil.which("redis-server"):
        # Pub/sub ignores Redis database numbers: a private server keeps other tests' channels out.
        return harness.start_redis()
    url = os.environ.get("EQIAN_TEST_REDIS_URL", "")
    if not url:
        pytest.fail("neither redis-server nor EQIAN_TEST_REDIS_URL is available")
    return None, url


async def _send(http: httpx.AsyncClient, channel_id: int, n: int) -> int:
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    r = await http.post(
        "/api/v1/messaging/instructions",
        json={
            "channel_id": channel_id,
            "title": f"第{n}号指令",
            "body": f"演练指令 {n}，请确认",
            "deadline": deadline,
        },
    )
    assert r.status_code == 201 or r.status_code == 200, r.text
    return int(r.json()["id"])


async def test_kill_9_a_worker_mid_broadcast_loses_and_repeats_nothing() -> None:
    harness.raise_nofile(4096)
    name = f"{make_url(PG_URL).database}_fault"
    database_url = await harness.create_database(PG_URL, name)
    redis_proc, redis_url = _redis()
    servers: harness.Servers | None = None
    pool: harness.ClientPool | None = None
    try:
        district = await harness.seed_district(database_url, CLIENTS)
        servers = harness.start_workers(database_url, redis_url)
        victim = servers.procs[0]
        a, b = (f"ws://127.0.0.1:{p}/ws" for p in servers.ports)
        # Even clients start on the victim, odd ones on the survivor; each falls back to the other.
        urls = [[a, b] if i % 2 == 0 else [b, a] for i in range(CLIENTS)]
        pool = harness.ClientPool(district.tokens, urls, processes=1)
        connected = await pool.connect(60)
        assert connected["ok"] == CLIENTS

        instruction_ids: list[int] = []
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{servers.ports[1]}",
            headers={"Authorization": f"Bearer {district.officer_token}"},
            timeout=60,
        ) as http:
            for n in range(1, MESSAGES + 1):
                instruction_ids.append(await _send(http, district.channel_id, n))
                if n == KILL_AFTER:
                    os.kill(victim.pid, signal.SIGKILL)  # mid-delivery of this one
                    victim.wait(10)
                await asyncio.sleep(0.1)
        results: list[dict[str, Any]] = await pool.results(instruction_ids, 90)

        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                stored = await conn.scalar(
                    text(
                        "SELECT count(*) FROM msg_receipts"
                        " WHERE acknowledged_at IS NOT NULL AND instruction_id = ANY(:ids)"
                    ),
                    {"ids": instruction_ids},
                )
                seqs = list(
                    await conn.scalars(
                        text("SELECT seq FROM msg_messages WHERE instruction_id = ANY(:ids) ORDER BY seq"),
                        {"ids": instruction_ids},
                    )
                )
        finally:
            await engine.dispose()
    finally:
        if pool is not None:
            await pool.close()
        if servers is not None:
            servers.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        await harness.drop_database(PG_URL, name)

    channel = district.channel_id
    problems: list[str] = []
    for i, r in enumerate(results):
        got = sorted((s, n) for c, s, n in r["seen"] if c == channel)
        if got != [(s, 1) for s in seqs]:
            problems.append(f"client {i}: station channel seqs {got} (want each of {seqs} once)")
        if sorted(int(k) for k in r["instructions"]) != sorted(instruction_ids):
            problems.append(f"client {i}: instructions {sorted(r['instructions'])}")
        if sorted(int(k) for k in r["acked"]) != sorted(instruction_ids):
            problems.append(f"client {i}: acked {sorted(r['acked'])} errors {r['errors']}")
        if i % 2 == 0 and r["reconnects"] < 1:
            problems.append(f"client {i} was on the killed worker but never reconnected")
    assert not problems, "\n".join(problems[:20]) + f"\n… {len(problems)} problems"
    assert len(seqs) == MESSAGES
    # Every acknowledgement a client sent (and was confirmed) is stored: 200 units × 6 instructions.
    assert stored == CLIENTS * MESSAGES
