"""Soak: minutes of mixed load on two uvicorn workers (``--workers 2``) over PostgreSQL and Redis
with the demo town seeded; 0 errors and no memory growth beyond 10 % are the verdict.

Setup: a throwaway PostgreSQL database (``eqian_bench_soak``, dropped afterwards), the schema from
the models, ``seed_demo`` (town scale, every domain), a private ``redis-server``, and one eqian
server with two worker processes. The load, from this process (asyncio, httpx, websockets):

- incident intake: ``POST /api/v1/incidents`` with an ``Idempotency-Key`` (the duty officer);
- messaging: the bureau sends an instruction to a station channel every few seconds; WebSocket
  clients of that station's unit account receive each one and acknowledge it (``ack`` → ``acked``);
- pages: a cookie session (logged in through the ``/login`` form) walking the main pages;
- API reads: units, incidents, mediation cases, requests, the notification inbox;
- the safety index job ``eqian index compute`` for last month, about once a minute (a subprocess
  with the server's settings).

Errors: any 5xx, connection error, or answer other than the expected one (a 2xx, or the page's
200), a WebSocket that drops, an acknowledgement never confirmed, or an index run that fails.
Memory: the workers' RSS (``VmRSS`` of uvicorn's worker processes) every 2 s; the baseline is the
median of the samples in the last 6 s of the warm-up, the end the median of the last three
samples. Same-run baseline for latency: the first window after the warm-up against the last
(each a minute, or a quarter of a shorter run). The machine is shared: its load average is printed.

Usage: python bench/soak.py [--minutes 10] [--quick] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: tests.pg._cluster and bench.broadcast by package
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench import broadcast as harness  # noqa: E402
from tests.pg import _cluster  # noqa: E402

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
BENCH_DB = "eqian_bench_soak"
PASSWORD = "Soak-pass-365"  # noqa: S105 - the throwaway demo accounts' password
MAX_GROWTH = 0.10
PAGES = (
    "/", "/units", "/incidents", "/mediation", "/requests", "/messaging", "/hazards", "/workforce",
    "/activities", "/environment", "/safety-index", "/cockpit",
)  # fmt: skip
API_READS = (
    "/api/v1/units?limit=20",
    "/api/v1/incidents?limit=20",
    "/api/v1/mediation/cases?limit=20",
    "/api/v1/requests?limit=20",
    "/api/v1/notifications?limit=20",
)
CALLS = (
    "吾悦广场三楼有人打架，请求出警",
    "童装厂门口电动车被盗，车主在现场",
    "小区楼道堆放杂物，有火灾隐患",
    "两名工人因工资发生争执，情绪激动",
    "有人冒充快递员打电话要求转账",
)


@dataclass
class Tally:
    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, str, float]] = field(default_factory=list)  # (t, kind, seconds)
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)

    def ok(self, kind: str, seconds: float) -> None:
        self.requests[kind] += 1
        self.samples.append((time.monotonic() - self.started, kind, seconds))

    def error(self, kind: str, detail: str) -> None:
        self.requests[kind] += 1
        self.errors[kind] += 1
        if len(self.error_examples) < 20:
            self.error_examples.append(f"{kind}: {detail[:300]}")


async def _timed(tally: Tally, kind: str, call: Callable[[], Any], expect: tuple[int, ...]) -> Any:
    t0 = time.perf_counter()
    try:
        r = await call()
    except httpx.HTTPError as exc:
        tally.error(kind, f"{type(exc).__name__}: {exc}")
        return None
    if r.status_code not in expect:
        tally.error(kind, f"HTTP {r.status_code} {r.text[:200]}")
        return None
    tally.ok(kind, time.perf_counter() - t0)
    return r


async def _token(http: httpx.AsyncClient, username: str) -> str:
    r = await http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return str(r.json()["access_token"])


async def _cookie_login(http: httpx.AsyncClient, username: str) -> None:
    form = await http.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if match is None:
        raise RuntimeError("no CSRF token on /login")
    r = await http.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": match.group(1), "next": "/"}
    )
    if r.status_code != 303:
        raise RuntimeError(f"login failed: {r.status_code}")


class Load:
    def __init__(self, base: str, tally: Tally, stop: asyncio.Event) -> None:
        self.base = base
        self.tally = tally
        self.stop = stop
        self.tokens: dict[str, str] = {}
        self.sent: dict[int, float] = {}
        self.acked: Counter[int] = Counter()
        self.ws_ready = 0
        self.ws_stop = asyncio.Event()  # after the other load, once the last acks are confirmed

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=60, **kw)

    def bearer(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def intake(self, seed: int) -> None:
        rng = random.Random(seed)
        headers = self.bearer("station_officer")
        async with self.client() as http:
            while not self.stop.is_set():
                body = {
                    "description": rng.choice(CALLS),
                    "caller_phone": f"139{rng.randint(10**7, 10**8 - 1)}",
                }
                h = {**headers, "Idempotency-Key": uuid.uuid4().hex}
                await _timed(
                    self.tally,
                    "intake",
                    lambda b=body, h=h: http.post("/api/v1/incidents", json=b, headers=h),  # type: ignore[misc]
                    (201,),
                )
                await asyncio.sleep(rng.uniform(0.1, 0.4))

    async def pages(self, seed: int) -> None:
        rng = random.Random(seed)
        async with self.client() as http:
            await _cookie_login(http, "bureau_admin")
            while not self.stop.is_set():
                path = rng.choice(PAGES)
                await _timed(self.tally, "page", lambda p=path: http.get(p), (200,))  # type: ignore[misc]
                await asyncio.sleep(rng.uniform(0.1, 0.4))

    async def reads(self, seed: int) -> None:
        rng = random.Random(seed)
        async with self.client(headers=self.bearer(rng.choice(["bureau_admin", "station_officer"]))) as http:
            while not self.stop.is_set():
                path = rng.choice(API_READS)
                await _timed(self.tally, "api_read", lambda p=path: http.get(p), (200,))  # type: ignore[misc]
                await asyncio.sleep(rng.uniform(0.05, 0.2))

    async def instructions(self, channel_id: int, every: float) -> None:
        n = 0
        async with self.client(headers=self.bearer("bureau_admin")) as http:
            while not self.stop.is_set():
                n += 1
                body = {
                    "channel_id": channel_id,
                    "title": f"第{n}号巡查指令",
                    "body": "请安保负责人确认收到",
                    "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
                }
                r = await _timed(
                    self.tally,
                    "instruction",
                    lambda b=body: http.post("/api/v1/messaging/instructions", json=b),  # type: ignore[misc]
                    (200, 201),
                )
                if r is not None:
                    self.sent[int(r.json()["id"])] = time.monotonic()
                await asyncio.sleep(every)

    async def ws_client(self, token: str, channel_box: list[int]) -> None:
        """One unit console: auth, resume, acknowledge every instruction; a drop is an error."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        url = self.base.replace("http://", "ws://") + "/ws"
        try:
            async with connect(
                url, compression=None, open_timeout=60, ping_interval=None, max_size=2**20
            ) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                ready = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if ready.get("type") != "ready":
                    self.tally.error("ws", f"no ready: {ready}")
                    return
                stations = [c for c in ready["channels"] if c["kind"] == "station"]
                if stations and not channel_box:
                    channel_box.append(int(stations[0]["id"]))
                await ws.send(
                    json.dumps(
                        {
                            "type": "resume",
                            "cursors": {str(c["id"]): c["last_seq"] for c in ready["channels"]},
                        }
                    )
                )
                self.ws_ready += 1
                while not self.ws_stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 1.0)
                    except TimeoutError:
                        continue
                    msg = json.loads(raw)
                    if (
                        msg.get("type") == "message"
                        and msg.get("kind") == "instruction"
                        and msg.get("instruction")
                    ):
                        iid = int(msg["instruction"]["id"])
                        await ws.send(json.dumps({"type": "ack", "instruction_id": iid}))
                    elif msg.get("type") == "acked":
                        iid = int(msg["instruction_id"])
                        self.acked[iid] += 1
                        if iid in self.sent:
                            self.tally.ok("ws_ack", time.monotonic() - self.sent[iid])
                    elif msg.get("type") == "error":
                        self.tally.error("ws", str(msg))
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            self.tally.error("ws", f"{type(exc).__name__}: {exc}")

    async def index_job(self, cluster: _cluster.Cluster, every: float, first_after: float) -> None:
        today = dt.datetime.now(dt.UTC).date()
        month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        await self._sleep(first_after)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            done = await asyncio.to_thread(cluster.eqian, "index", "compute", "--month", month, timeout=600)
            if done.returncode == 0:
                self.tally.ok("index_job", time.perf_counter() - t0)
            else:
                self.tally.error("index_job", done.stdout[-300:] + done.stderr[-300:])
            await self._sleep(every)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)


async def seed(database_url: str, units: int | None = None) -> None:
    from eqian.core.db import make_engine, make_sessionmaker
    from eqian.demo.generator import seed_demo

    await _cluster.build_schema(database_url)
    engine = make_engine(database_url)
    try:
        await seed_demo(make_sessionmaker(engine), scale="town", seed=365, password=PASSWORD, units=units)
    finally:
        await engine.dispose()


def server_errors(log: str) -> list[str]:
    """Each traceback in a server log, shortened to its first frame of eqian code and its last line."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        if "The above exception was the direct cause" in block or "During handling of the above" in block:
            continue  # one error, reported by the last traceback of its chain
        lines = [line for line in block.splitlines() if line.strip()]
        ours = [line.strip() for line in lines if "/eqian/" in line and "site-packages" not in line]
        ending = next((line for line in lines if not line.startswith(" ")), lines[-1] if lines else "")
        found.append(f"{ending[:400]} (at {ours[-1] if ours else '?'})")
    return found


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _window(samples: list[tuple[float, str, float]], lo: float, hi: float) -> dict[str, float]:
    got = [s for t, kind, s in samples if lo <= t < hi and kind != "index_job"]
    return {
        "requests": len(got),
        "p50_ms": round(harness.percentile(got, 50) * 1000, 1),
        "p99_ms": round(harness.percentile(got, 99) * 1000, 1),
    }


async def soak(
    pg_admin_url: str,
    db_name: str,
    *,
    seconds: float,
    warmup: float,
    index_every: float = 60.0,
    ws_clients: int = 8,
    units: int | None = None,
    print_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the soak and return its figures (``ok`` is the verdict)."""
    load_before = os.getloadavg()
    database_url = await harness.create_database(pg_admin_url, db_name)
    redis_proc, redis_url = _cluster.redis()
    cluster: _cluster.Cluster | None = None
    rss: list[tuple[float, int, list[int]]] = []  # (t, total KiB, per worker)
    try:
        t_seed = time.monotonic()
        await seed(database_url, units)
        seed_s = time.monotonic() - t_seed
        cluster = _cluster.Cluster(database_url, redis_url, count=1, workers=2)
        cluster.start_all()
        pids: list[int] = []
        for _ in range(100):  # the supervisor spawns its workers right after binding
            pids = cluster.worker_pids(0)
            if len(pids) == 2:
                break
            await asyncio.sleep(0.1)
        if len(pids) != 2:
            raise RuntimeError(f"expected 2 uvicorn workers, found {pids}")
        tally = Tally()
        stop = asyncio.Event()
        load = Load(cluster.url(0), tally, stop)
        async with load.client() as http:
            for user in ("station_officer", "bureau_admin", "unit_security"):
                load.tokens[user] = await _token(http, user)
        channel_box: list[int] = []
        tasks = [
            asyncio.create_task(load.ws_client(load.tokens["unit_security"], channel_box))
            for _ in range(ws_clients)
        ]
        for _ in range(600):
            if load.ws_ready == ws_clients and channel_box:
                break
            await asyncio.sleep(0.1)
        if not channel_box:
            raise RuntimeError("the unit account sees no station channel")
        tally.started = time.monotonic()
        tasks += [
            asyncio.create_task(load.intake(1)),
            asyncio.create_task(load.intake(2)),
            asyncio.create_task(load.pages(3)),
            asyncio.create_task(load.reads(4)),
            asyncio.create_task(load.reads(5)),
            asyncio.create_task(load.instructions(channel_box[0], 3.0)),
            asyncio.create_task(load.index_job(cluster, index_every, min(index_every, seconds / 2))),
        ]
        while (elapsed := time.monotonic() - tally.started) < seconds:
            rss.append((elapsed, sum(per := [_cluster.rss_kib(p) for p in pids]), per))
            await asyncio.sleep(2.0)
        rss.append((time.monotonic() - tally.started, sum(per := [_cluster.rss_kib(p) for p in pids]), per))
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks[ws_clients:]), 600)
        # The last instructions' acknowledgements are confirmed after the load stops.
        for _ in range(300):
            if all(load.acked[i] >= ws_clients for i in load.sent):
                break
            await asyncio.sleep(0.1)
        load.ws_stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks[:ws_clients]), 60)
        unconfirmed = [i for i in load.sent if load.acked[i] < ws_clients]
        alive = [p for p in pids if _cluster.rss_kib(p) > 0]
        if len(alive) != 2:
            tally.error("worker", f"a worker died: {pids} alive {alive}")
        logs = cluster.logs()
    finally:
        if cluster is not None:
            cluster.stop()
        _cluster.stop_process(redis_proc)
        await harness.drop_database(pg_admin_url, db_name)

    base_samples = [total for t, total, _ in rss if warmup - 6 <= t <= warmup] or [rss[0][1]]
    baseline_kib = _median([float(x) for x in base_samples])
    end_kib = _median([float(total) for _, total, _ in rss[-3:]])
    growth = end_kib / baseline_kib - 1
    window = min(60.0, (seconds - warmup) / 4)
    first = _window(tally.samples, warmup, warmup + window)
    last = _window(tally.samples, seconds - window, seconds)
    for iid in unconfirmed:
        tally.error("ws_ack", f"instruction {iid} confirmed to {load.acked[iid]} of {ws_clients} clients")
    for trace in server_errors(logs):
        tally.error("server_log", trace)
    errors = sum(tally.errors.values())
    result: dict[str, Any] = {
        "bench": "soak",
        "seconds": round(seconds),
        "warmup_s": round(warmup),
        "seed_s": round(seed_s, 1),
        "requests": dict(tally.requests),
        "errors": errors,
        "errors_by_kind": dict(tally.errors),
        "rss_baseline_mib": round(baseline_kib / 1024, 1),
        "rss_end_mib": round(end_kib / 1024, 1),
        "rss_peak_mib": round(max(t for _, t, _ in rss) / 1024, 1),
        "rss_growth_pct": round(growth * 100, 2),
        "rss_end_per_worker_mib": [round(k / 1024, 1) for k in rss[-1][2]],
        "first_window": first,
        "last_window": last,
        "p50_ratio_last_vs_first": round(last["p50_ms"] / first["p50_ms"], 2) if first["p50_ms"] else None,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "ok": errors == 0 and growth <= MAX_GROWTH,
    }
    for example in tally.error_examples:
        print_fn(f"error: {example}")
    print_fn(
        f"soak {seconds:.0f} s (warm-up {warmup:.0f} s):"
        f" {sum(tally.requests.values())} requests, {errors} errors;"
        f" RSS {result['rss_baseline_mib']} → {result['rss_end_mib']} MiB"
        f" ({result['rss_growth_pct']:+.2f} %);"
        f" p50 {first['p50_ms']} → {last['p50_ms']} ms, p99 {first['p99_ms']} → {last['p99_ms']} ms;"
        f" load average {result['loadavg_before']} → {result['loadavg_after']}"
    )
    return result


def main(argv: list[str] | None = None, print_fn: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="1 minute")
    parser.add_argument("--units", type=int, default=None, help="units in the demo district (default: town)")
    parser.add_argument("--pg", default=os.environ.get("EQIAN_BENCH_PG", DEFAULT_PG))
    args = parser.parse_args(argv)
    seconds = 60.0 if args.quick else args.minutes * 60
    warmup = min(60.0, seconds / 4)
    result = asyncio.run(
        soak(args.pg, BENCH_DB, seconds=seconds, warmup=warmup, units=args.units, print_fn=print_fn)
    )
    print_fn(json.dumps(result, ensure_ascii=False))
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
