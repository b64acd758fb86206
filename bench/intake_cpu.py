"""Worker CPU per incident post, without sockets: the intake path against the bare insert.

``bench/intake.py`` measures the server as clients see it, where two workers, PostgreSQL and the
load generator share the host's cores and every figure moves with the host. This one asks a
narrower, steadier question: how many microseconds of one worker's CPU does a request cost? The
bench app (``bench/intake.py``'s ``bench_app``: the real app plus the bare insert route) is called
as ASGI in this process, ``CONCURRENCY`` requests in flight, over a PostgreSQL database with the
demo town; ``time.process_time`` over the measured requests, after a warm-up, for the full intake
path and for the bare insert, rounds interleaved (so drift falls on both), and their ratio.
PostgreSQL's own CPU is not in the figure (it is another process).

``--profile FILE`` writes a cProfile of the full path's measured rounds (``python -m pstats``).

Usage: python bench/intake_cpu.py [--requests N] [--rounds N] [--keep] [--profile FILE]
       [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.intake import PASSWORD, body_for, registry, setup  # noqa: E402
from bench.pgadmin import admin  # noqa: E402

DB_NAME = "eqian_bench_intake_cpu"
CONCURRENCY = 16


async def call(app: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would hand it over (no sockets)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    done = asyncio.Event()
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


def postgres_cpu() -> float | None:
    """CPU seconds used so far by the host's PostgreSQL processes (Linux ``/proc``; None elsewhere).
    The pool keeps its connections for the whole run, so a round's difference is its backends' work."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("postgres"):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def run_round(
    app: Any, path: str, token: str, bodies: list[dict[str, Any]]
) -> tuple[float, float, float | None]:
    """Post every body, ``CONCURRENCY`` at a time; (CPU seconds here, wall seconds, PostgreSQL's CPU)."""
    queue = list(reversed(bodies))

    async def client() -> None:
        while queue:
            body = queue.pop()
            headers = {
                "authorization": f"Bearer {token}",
                "content-type": "application/json",
                "idempotency-key": uuid.uuid4().hex,
            }
            status, answer = await call(
                app, "POST", path, headers, json.dumps(body, ensure_ascii=False).encode()
            )
            if status != 201:
                raise RuntimeError(f"{path}: {status} {answer[:300]!r}")

    cpu0, wall0, pg0 = time.process_time(), time.perf_counter(), postgres_cpu()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    pg1 = postgres_cpu()
    pg = None if pg0 is None or pg1 is None else pg1 - pg0
    return time.process_time() - cpu0, time.perf_counter() - wall0, pg


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/")
    parser.add_argument("--requests", type=int, default=3000, help="per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the database")
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--only", choices=("full", "bare"), help="measure one path (for a sampling profiler)")
    args = parser.parse_args()

    url = args.pg + DB_NAME
    exists = False
    if args.keep:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(args.pg + "postgres")
        async with engine.connect() as conn:
            exists = bool(
                await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
            )
        await engine.dispose()
    if not exists:
        await admin(args.pg, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await admin(args.pg, f"CREATE DATABASE {DB_NAME}")
    os.environ.update(
        {
            "EQIAN_DATABASE_URL": url,
            "EQIAN_LOG_LEVEL": "WARNING",
            "EQIAN_RATE_LIMIT_INTAKE_PER_MINUTE": "100000000",
            "EQIAN_RATE_LIMIT_WRITE_PER_MINUTE": "100000000",
            "EQIAN_DB_POOL_SIZE": "20",
            "EQIAN_OUTBOX_POLL_SECONDS": "0",  # the dispatcher's CPU is not a request's
        }
    )
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as var_dir:
            os.environ["EQIAN_VAR_DIR"] = var_dir
            if not exists:
                print(f"setting up {DB_NAME} (schema + demo town) …", flush=True)
                info = await setup(url)
            else:
                info = await registry(url)
            from bench.intake import bench_app

            app = bench_app()
            rng = random.Random(365)
            station = info["officer_station"]
            units = [u for u in info["units"] if u[2] == station]
            async with app.router.lifespan_context(app):
                _, answer = await call(
                    app,
                    "POST",
                    "/api/v1/auth/token",
                    {"content-type": "application/x-www-form-urlencoded"},
                    f"username=station_officer&password={PASSWORD}".encode(),
                )
                token = json.loads(answer)["access_token"]
                paths = {"full": "/api/v1/incidents", "bare": "/bench/bare-incident"}
                if args.only:
                    paths = {args.only: paths[args.only]}
                for path in paths.values():  # warm-up: caches, pools, compiled statements
                    await run_round(app, path, token, [body_for(rng, units) for _ in range(500)])
                cpu: dict[str, list[float]] = {"full": [], "bare": []}
                pg_cpu: dict[str, list[float]] = {"full": [], "bare": []}
                profiler = cProfile.Profile(time.process_time) if args.profile else None
                for r in range(args.rounds):
                    for name, path in paths.items():
                        bodies = [body_for(rng, units) for _ in range(args.requests)]
                        if profiler and name == "full":
                            profiler.enable()
                        used, wall, pg = await run_round(app, path, token, bodies)
                        if profiler and name == "full":
                            profiler.disable()
                        us = used / args.requests * 1e6
                        cpu[name].append(us)
                        if pg is not None:
                            pg_cpu[name].append(pg / args.requests * 1e6)
                        pg_us = f", PostgreSQL {pg_cpu[name][-1]:,.0f} µs" if pg is not None else ""
                        rate = args.requests / wall
                        print(
                            f"round {r + 1} {name}: {us:,.0f} µs CPU a request{pg_us} ({rate:,.0f}/s)",
                            flush=True,
                        )
                if profiler:
                    profiler.dump_stats(args.profile)
    finally:
        if not args.keep:
            await admin(args.pg, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")

    def median(xs: list[float]) -> int | None:
        return round(statistics.median(xs)) if xs else None

    if args.only:
        print(json.dumps({f"{args.only}_us_per_request": median(cpu[args.only])}))
        return
    full, bare = statistics.median(cpu["full"]), statistics.median(cpu["bare"])
    pg_full, pg_bare = median(pg_cpu["full"]), median(pg_cpu["bare"])
    print(
        json.dumps(
            {
                "requests_per_round": args.requests,
                "rounds": args.rounds,
                "full_us_per_request": round(full),
                "bare_us_per_request": round(bare),
                "ratio": round(full / bare, 2),
                "full_rounds_us": [round(x) for x in cpu["full"]],
                "bare_rounds_us": [round(x) for x in cpu["bare"]],
                "postgres_full_us_per_request": pg_full,
                "postgres_bare_us_per_request": pg_bare,
                "postgres_ratio": round(pg_full / pg_bare, 2) if pg_full and pg_bare else None,
            }
        )
    )


if __name__ == "__main__":
    try:  # the loop uvicorn's workers run on
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
