"""Broadcast of one instruction to N WebSocket clients across two server workers, every client
acknowledging — against a bare ``websockets`` server doing the same fan-out, in the same run.

Setup (a throwaway PostgreSQL database ``eqian_bench_broadcast`` and a private ``redis-server`` on a
free port, both removed afterwards): one station holding N units, one ``unit_security`` user and one
bearer token per unit, written in bulk straight into the tables (tokens stored as SHA-256 like
``core.auth`` does), and a station officer. Two eqian workers (uvicorn, no per-message deflate,
no access log) share the database and Redis; the clients are split between them.

Clients run in several processes (asyncio and the lean client of ``bench/wsclient.py``, which
costs the load generator a fraction of what ``websockets`` does; no compression offered), each client
authenticating with ``{"type": "auth", "token": …}``, waiting for ``ready`` and resuming from the
channels' last seq. Round 1 (eqian): the officer ``POST``s an instruction to the station channel;
each client records when the instruction message arrives, answers ``{"type": "ack"}`` and waits
for ``acked``; the script polls ``msg_receipts`` until every acknowledgement is stored. Round 2
(baseline): the same client processes reconnect to two bare ``websockets`` servers speaking the same
protocol from memory (auth against the same token set, ``ready``/``resume``/``resumed``, one
``broadcast()`` of a message of the same shape, ``acked`` for each ack, no database).

Each round makes ``--broadcasts`` broadcasts (default 3), one after another, each once every ack of
the previous one is confirmed. Figures: delivery latency p50/p99 pooled over the broadcasts, and
each broadcast's p99 and fan-out (from the moment the POST / broadcast command is sent to the moment
a client has the message), time until all acks are stored after the last ack was sent and acks
stored per second (each broadcast), CPU seconds per process group during each broadcast, the
workers' RSS (current and peak), and the baseline's figures with the ratios. The machine's load
average is printed with them (the machine is shared).

Scheduling: every process the script starts (the eqian workers, Redis, the bare servers, the client
processes) stays in the script's own session. Linux with ``kernel.sched_autogroup_enabled = 1``
(this machine's setting) gives each session a scheduling group of its own and shares the CPU
between groups first: a worker started in a new session got as much CPU as all four client
processes together, while the bare servers, started by ``multiprocessing`` in the script's session,
shared it process by process with the clients. The rounds were measured under different rules
(before stop 19: eqian's delivery p99 1.0-1.3 s against 0.54-0.74 s now, same code and host).
Workers get a process group of their own (``process_group=0``) so that they can still be stopped
with everything they started. PostgreSQL, a service of the machine, keeps its own group. (The
clients' share of the CPU is part of every delivery latency measured here, and clients of a real
deployment are not on the server at all: the rule that starves them less is the nearer one.)

Usage: python bench/broadcast.py [--quick] [--clients N] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: bench.wsclient by package
    sys.path.insert(0, str(ROOT))

from bench.wsclient import LeanSocket, open_socket  # noqa: E402

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
BENCH_DB = "eqian_bench_broadcast"


# --- small utilities -----------------------------------------------------------------------------


def raise_nofile(want: int) -> int:
    """Raise this process's open-file limit as far as allowed; returns the soft limit now."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (max(want, hard), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, target), target))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sched_autogroup() -> str:
    """The kernel's autogroup setting ("1": a scheduling group per session; see Scheduling)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown"


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: each socket stays bound until all are chosen, since the kernel may
    hand a just-closed port out again (two workers once got the same one; the second could not bind
    and the first answered for both)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def free_port() -> int:
    return free_ports(1)[0]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (0 for one that is gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds spent by groups of processes between ``start()`` and ``stop()``: where the two
    cores went during a broadcast (the servers, the load generator, the database)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {k: cpu_seconds(f()) for k, f in self.groups.items()}

    def stop(self) -> dict[str, float]:
        return {k: round(cpu_seconds(f()) - self.before[k], 2) for k, f in self.groups.items()}


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, (0, 0) when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def with_database(url: str, name: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


# --- the district: units, users, tokens ----------------------------------------------------------


@dataclass
class District:
    database_url: str
    station_id: int
    channel_id: int
    officer_token: str
    tokens: list[str]  # one per unit, in unit order
    unit_ids: list[int]


async def create_database(admin_url: str, name: str) -> str:
    from sqlalchemy import text

    from eqian.core.db import make_engine

    engine = make_engine(with_database(admin_url, "postgres"))
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import text

    from eqian.core.db import make_engine

    engine = make_engine(with_database(admin_url, "postgres"))
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def seed_district(database_url: str, n_units: int) -> District:
    """Schema from the models, then one station, N units with a security user and a bearer token
    each, and a station officer; bulk inserts with explicit ids (seconds for 20,000)."""
    from sqlalchemy import insert, select, text

    import eqian.web.app  # noqa: F401 - every table the app uses, not only those of all_models
    from eqian.all_models import Base
    from eqian.core.accounts import AuthSession, Role, User
    from eqian.core.auth import token_digest
    from eqian.core.db import make_engine, make_sessionmaker
    from eqian.core.ids import make_credit_code
    from eqian.messaging.models import Channel
    from eqian.messaging.service import ensure_channels
    from eqian.organizations.categories import CATEGORIES
    from eqian.organizations.models import Bureau, Station, Unit, UnitCategory

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(days=1)
        tokens = [secrets.token_urlsafe(32) for _ in range(n_units)]
        officer_token = secrets.token_urlsafe(32)
        unit_ids = list(range(1, n_units + 1))
        codes = [c.code for c in CATEGORIES]
        factory = make_sessionmaker(engine)
        async with factory() as s:
            await s.execute(insert(Bureau), [{"id": 1, "code": "zhili", "name": "织里分局"}])
            await s.execute(
                insert(Station), [{"id": 1, "bureau_id": 1, "code": "zhinan", "name": "织南派出所"}]
            )
            await s.execute(
                insert(UnitCategory),
                [
                    {"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "sort_order": i}
                    for i, c in enumerate(CATEGORIES)
                ],
            )
            chunk = 5000
            for start in range(0, n_units, chunk):
                part = unit_ids[start : start + chunk]
                await s.execute(
                    insert(Unit),
                    [
                        {
                            "id": uid,
                            "name": f"压测单位{uid:05d}",
                            "credit_code": make_credit_code(f"91330502MA{uid:07d}"),
                            "category_code": codes[uid % len(codes)],
                            "station_id": 1,
                            "status": "active",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for uid in part
                    ],
                )
                await s.execute(
                    insert(User),
                    [
                        {
                            "id": uid + 1,
                            "username": f"unit{uid:05d}",
                            "display_name": f"安保{uid:05d}",
                            "password_hash": "!",  # no password: token only
                            "role": Role.UNIT_SECURITY.value,
                            "unit_id": uid,
                            "is_active": True,
                            "failed_logins": 0,
                            "created_at": now,
                            "password_changed_at": now,
                        }
                        for uid in part
                    ],
                )
                await s.execute(
                    insert(AuthSession),
                    [
                        {
                            "token_hash": token_digest(tokens[uid - 1]),
                            "user_id": uid + 1,
                            "kind": "bearer",
                            "created_at": now,
                            "last_seen_at": now,
                            "expires_at": expires,
                        }
                        for uid in part
                    ],
                )
            await s.execute(
                insert(User),
                [
                    {
                        "id": 1,
                        "username": "duty_officer",
                        "display_name": "值班民警",
                        "password_hash": "!",
                        "role": Role.STATION_OFFICER.value,
                        "station_id": 1,
                        "is_active": True,
                        "failed_logins": 0,
                        "created_at": now,
                        "password_changed_at": now,
                    }
                ],
            )
            await s.execute(
                insert(AuthSession),
                [
                    {
                        "token_hash": token_digest(officer_token),
                        "user_id": 1,
                        "kind": "bearer",
                        "created_at": now,
                        "last_seen_at": now,
                        "expires_at": expires,
                    }
                ],
            )
            if engine.dialect.name == "postgresql":
                for table in ("bureaus", "stations", "units", "users"):
                    await s.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
            await s.commit()
        async with factory() as s:
            await ensure_channels(s)
            channel_id = await s.scalar(select(Channel.id).where(Channel.key == "station:1"))
        assert channel_id is not None
        # A district that has been running has statistics (autovacuum); one bulk-loaded a second
        # ago has none, and its first plans would be the fresh import's, not the service's.
        async with engine.connect() as conn:
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return District(database_url, 1, int(channel_id), officer_token, tokens, unit_ids)


# --- processes: Redis and the eqian workers ------------------------------------------------------


def _raise_child_nofile() -> None:
    raise_nofile(65536)


@dataclass
class Servers:
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    tmp: Path | None = None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    redis = shutil.which("redis-server")
    if redis is None:
        raise RuntimeError("redis-server not found")
    port = free_port()
    proc = subprocess.Popen(
        [
            redis,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "10000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,  # in the script's session (see Scheduling above)
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def start_workers(
    database_url: str, redis_url: str, count: int = 2, *, log_dir: Path | None = None
) -> Servers:
    """``count`` eqian workers, each its own process on its own port (so one can be killed)."""
    servers = Servers(tmp=Path(tempfile.mkdtemp(prefix="eqian-bench-")))
    env = {
        **os.environ,
        "EQIAN_DATABASE_URL": database_url,
        "EQIAN_REDIS_URL": redis_url,
        "EQIAN_VAR_DIR": str(servers.tmp),
        "EQIAN_SECRET_KEY": "bench-secret-key-" + secrets.token_hex(8),
        "EQIAN_LOG_LEVEL": "WARNING",
        "EQIAN_ENV_FILE": "/dev/null",
        "EQIAN_GC_FREEZE": "true",  # as in production, whatever the calling process says
        # Redis pub/sub ignores database numbers: a prefix of our own keeps other runs' topics out.
        "EQIAN_PUBSUB_PREFIX": f"bench-{secrets.token_hex(4)}",
    }
    for i, port in enumerate(free_ports(count)):
        # The log file lives as long as the worker process.
        log = open((log_dir or servers.tmp) / f"worker{i}.log", "wb")  # noqa: SIM115
        cmd = [
            sys.executable, "-m", "uvicorn", "eqian.web.main:app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
            "--ws-per-message-deflate", "false", "--backlog", "4096",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_child_nofile,
            process_group=0,  # in the script's session (see Scheduling above)
            cwd=ROOT,
        )
        servers.procs.append(proc)
        servers.ports.append(port)
    for proc, port in zip(servers.procs, servers.ports, strict=True):
        wait_http(port, proc)
    return servers


def wait_http(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"worker on port {port} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"worker on port {port} did not come up")


# --- the clients ---------------------------------------------------------------------------------


class Client:
    """One unit's connection: auth, resume from cursors, ack every instruction, reconnect on loss
    (to the next URL in its list) resuming from the last seq seen in each channel and resending
    acks that were never confirmed. Messages are handled in the socket's ``data_received``
    (``bench/wsclient.py``): the receipt time is taken as the frame is parsed."""

    def __init__(self, token: str, urls: list[str]) -> None:
        self.token = token
        self.urls = urls
        self.url_index = 0
        self.cursors: dict[str, int] = {}
        self.seen: dict[tuple[int, int], int] = {}  # (channel, seq) -> times received
        self.instructions: dict[int, float] = {}  # instruction id -> first receipt time
        self.ack_sent: dict[int, float] = {}
        self.acked: dict[int, float] = {}
        self.reconnects = 0
        self.errors: list[str] = []
        self.connected = asyncio.Event()
        self.ws: LeanSocket | None = None
        self._first = True
        self._state = "auth"
        self._live: asyncio.Future[None] | None = None

    async def run(self, stop: asyncio.Event, connect_gate: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            url = self.urls[self.url_index % len(self.urls)]
            # The gate is held from the TCP connect until "resumed": the whole handshake is paced, so
            # the figures measure the broadcast rather than a reconnection storm.
            await connect_gate.acquire()
            held = True
            try:
                self._state, self._live = "auth", loop.create_future()
                ws = await open_socket(url, self._on_text)
                self.ws = ws
                ws.send_text(json.dumps({"type": "auth", "token": self.token}))
                await asyncio.wait({self._live, ws.closed}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
                if not self._live.done():
                    ws.abort()
                    await asyncio.wait({ws.closed}, timeout=5)
                    raise TimeoutError("no 'resumed' within 120 s")
                connect_gate.release()
                held = False
                await ws.closed  # raises the error that ended the connection, if any
                if stop.is_set():
                    return
                raise ConnectionError("the server closed the connection")
            except (OSError, TimeoutError, EOFError) as exc:  # ConnectionError is an OSError
                if stop.is_set():
                    return
                self._first = False
                self.connected.clear()
                self.reconnects += 1
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:100]}")
                self.url_index += 1  # the other worker
                await asyncio.sleep(0.05 + 0.2 * (self.reconnects % 5))
            finally:
                if held:
                    connect_gate.release()
                if self.ws is not None and self.ws.closed.done():
                    self.ws = None

    def _on_text(self, ws: LeanSocket, raw: str) -> None:
        msg = json.loads(raw)
        kind = msg.get("type")
        if kind == "message":
            self._on_message(ws, msg)
        elif kind == "ready" and self._state == "auth":
            if self._first:
                self.cursors = {str(c["id"]): int(c["last_seq"]) for c in msg.get("channels", [])}
            ws.send_text(json.dumps({"type": "resume", "cursors": self.cursors}))
            self._state = "resuming"
        elif kind == "resumed" and self._state == "resuming":
            self._state = "live"
            # Acks sent on a connection that died before its "acked": send them again.
            for instruction_id in [i for i in self.ack_sent if i not in self.acked]:
                ws.send_text(json.dumps({"type": "ack", "instruction_id": instruction_id}))
            self.connected.set()
            if self._live is not None and not self._live.done():
                self._live.set_result(None)
        elif kind == "acked":
            self.acked.setdefault(int(msg["instruction_id"]), time.time())
        elif kind == "error" and self._state == "auth":
            raise ConnectionError(str(msg))

    def _on_message(self, ws: LeanSocket, msg: dict[str, Any]) -> None:
        now = time.time()
        key = (int(msg["channel_id"]), int(msg["seq"]))
        self.seen[key] = self.seen.get(key, 0) + 1
        channel = str(key[0])
        self.cursors[channel] = max(self.cursors.get(channel, 0), key[1])
        instruction = msg.get("instruction")
        if msg.get("kind") == "instruction" and instruction:
            iid = int(instruction["id"])
            if iid not in self.instructions:
                self.instructions[iid] = now
                self.ack_sent[iid] = time.time()
                ws.send_text(json.dumps({"type": "ack", "instruction_id": iid}))

    def summary(self) -> dict[str, Any]:
        return {
            "seen": [[c, s, n] for (c, s), n in self.seen.items()],
            "instructions": self.instructions,
            "ack_sent": self.ack_sent,
            "acked": self.acked,
            "reconnects": self.reconnects,
            "errors": self.errors,
        }


async def _client_loop(conn: Connection, tokens: list[str], urls_of: list[list[str]], gate_size: int) -> None:
    stop = asyncio.Event()
    gate = asyncio.Semaphore(gate_size)
    clients = [Client(t, u) for t, u in zip(tokens, urls_of, strict=True)]
    started = time.monotonic()
    tasks = [asyncio.create_task(c.run(stop, gate)) for c in clients]

    async def all_connected(wait_s: float) -> int:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), wait_s)
        return sum(c.connected.is_set() for c in clients)

    loop = asyncio.get_running_loop()
    while True:
        command, arg = await loop.run_in_executor(None, conn.recv)
        if command == "connect":
            n = await all_connected(float(arg))
            # The load generator's own sockets must not stall it in full collections mid-broadcast
            # (same for both rounds; the servers get the same treatment from core.gcpolicy).
            gc.collect()
            gc.freeze()
            conn.send(("connected", {"ok": n, "total": len(clients), "seconds": time.monotonic() - started}))
        elif command == "wait":
            # Wait until every client has every expected instruction acked (or the timeout).
            expect: list[int] = arg["instructions"]
            deadline = time.monotonic() + float(arg["timeout"])
            while time.monotonic() < deadline:
                if all(all(i in c.acked for i in expect) for c in clients):
                    break
                await asyncio.sleep(0.05)
            conn.send(("result", [c.summary() for c in clients]))
        elif command == "close":
            stop.set()
            for c in clients:
                if c.ws is not None:
                    c.ws.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            conn.send(("closed", None))
            return


def client_process(conn: Connection, tokens: list[str], urls_of: list[list[str]], gate_size: int) -> None:
    raise_nofile(len(tokens) + 1024)
    asyncio.run(_client_loop(conn, tokens, urls_of, gate_size))


class ClientPool:
    """Client processes, each holding a slice of the clients."""

    def __init__(
        self, tokens: list[str], urls_of: list[list[str]], processes: int, gate_size: int = 100
    ) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        per = -(-len(tokens) // processes)
        for i in range(processes):
            part = slice(i * per, (i + 1) * per)
            if not tokens[part]:
                break
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=client_process, args=(child, tokens[part], urls_of[part], gate_size), daemon=True
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def _ask(self, command: str, arg: Any) -> list[Any]:
        for p in self.pipes:
            p.send((command, arg))
        return [p.recv()[1] for p in self.pipes]

    async def ask(self, command: str, arg: Any) -> list[Any]:
        return await asyncio.to_thread(self._ask, command, arg)

    async def connect(self, wait_s: float) -> dict[str, Any]:
        answers = await self.ask("connect", wait_s)
        return {
            "ok": sum(a["ok"] for a in answers),
            "total": sum(a["total"] for a in answers),
            "seconds": max(a["seconds"] for a in answers),
        }

    async def results(self, instructions: list[int], wait_s: float) -> list[dict[str, Any]]:
        answers = await self.ask("wait", {"instructions": instructions, "timeout": wait_s})
        return [summary for part in answers for summary in part]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask("close", None), 60)
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# --- the bare baseline server --------------------------------------------------------------------


def bare_server_process(port: int, token_file: str, control_token: str) -> None:
    raise_nofile(65536)
    lines = Path(token_file).read_text().splitlines()
    tokens = {line.strip(): i + 1 for i, line in enumerate(lines) if line.strip()}
    asyncio.run(_bare_server(port, tokens, control_token))


async def _bare_server(port: int, tokens: dict[str, int], control_token: str) -> None:
    """The same protocol from memory: what a WebSocket fan-out costs without database or Redis."""
    from websockets.asyncio.server import broadcast, serve

    from eqian.core.gcpolicy import Settler

    settler = Settler()  # the same garbage-collector policy as the eqian workers
    members: set[Any] = set()
    history: list[str] = []
    acks: set[tuple[int, int]] = set()
    channel = {"id": 1, "kind": "station", "name": "织南派出所·全体单位"}

    async def handler(ws: Any) -> None:
        first = json.loads(await ws.recv())
        token = first.get("token", "")
        if token == control_token:
            async for raw in ws:
                cmd = json.loads(raw)
                if cmd["type"] == "broadcast":
                    seq = len(history) + 1
                    msg = {**cmd["message"], "channel_id": 1, "seq": seq, "id": seq}
                    msg["instruction"] = {**msg["instruction"], "id": seq}
                    data = json.dumps(msg, ensure_ascii=False)
                    history.append(data)
                    broadcast(members, data)
                    await ws.send(json.dumps({"type": "broadcast_done", "seq": seq}))
                elif cmd["type"] == "stats":
                    await ws.send(json.dumps({"type": "stats", "acks": len(acks)}))
            return
        user_id = tokens.get(token)
        if user_id is None:
            await ws.close(4401)
            return
        await ws.send(
            json.dumps(
                {"type": "ready", "user_id": user_id, "channels": [{**channel, "last_seq": len(history)}]}
            )
        )
        try:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "resume":
                    after = int(msg.get("cursors", {}).get("1", len(history)))
                    for data in history[after:]:
                        await ws.send(data)
                    await ws.send('{"type":"resumed"}')
                    members.add(ws)
                    settler.opened_one()
                elif kind == "ack":
                    iid = int(msg["instruction_id"])
                    acks.add((user_id, iid))
                    await ws.send(json.dumps({"type": "acked", "instruction_id": iid}))
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
        finally:
            members.discard(ws)

    # Keepalive pings every 20 s with a 20 s timeout, as uvicorn gives each eqian worker's sockets by
    # default: both servers keep 20,000 connections alive the same way (≈ 1,000 pings a second).
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        backlog=4096,
        max_size=2**20,
        ping_interval=20,
        ping_timeout=20,
    ):
        await asyncio.Future()


# --- the rounds ----------------------------------------------------------------------------------


def _latencies(
    results: list[dict[str, Any]], instruction_id: int, t0: float
) -> tuple[list[float], list[float], list[float]]:
    """One broadcast's receipt times (from ``t0``), ack send times and ``acked`` times."""
    recv, ack_sent, acked = [], [], []
    for r in results:
        if instruction_id in r["instructions"]:
            recv.append(r["instructions"][instruction_id] - t0)
        if instruction_id in r["ack_sent"]:
            ack_sent.append(r["ack_sent"][instruction_id])
        if instruction_id in r["acked"]:
            acked.append(r["acked"][instruction_id])
    return recv, ack_sent, acked


def _delivery(each: list[list[float]]) -> dict[str, Any]:
    """Delivery figures of several broadcasts: pooled percentiles (every delivery counts once), and
    per broadcast its p99 and its fan-out (first client to the 99th percentile one)."""
    pooled = [t for recv in each for t in recv]
    fanouts = [percentile(recv, 99) - min(recv) for recv in each if recv]
    return {
        "received": [len(recv) for recv in each],
        "p50_ms": round(percentile(pooled, 50) * 1000, 1),
        "p99_ms": round(percentile(pooled, 99) * 1000, 1),
        "max_ms": round(max(pooled, default=float("nan")) * 1000, 1),
        "p99_each_ms": [round(percentile(recv, 99) * 1000, 1) for recv in each],
        "fanout_p99_ms": round(percentile(fanouts, 50) * 1000, 1),
        "fanout_each_ms": [round(f * 1000, 1) for f in fanouts],
    }


async def _wait_stored(
    engine: Any, instruction_id: int, n: int, wait_s: float, results_task: asyncio.Task[Any]
) -> tuple[int, float | None]:
    """Polls ``msg_receipts`` until all ``n`` acknowledgements are stored (or the clients gave up):
    the count and when it last grew."""
    from sqlalchemy import text

    stored_at: float | None = None
    stored = 0
    deadline = time.monotonic() + wait_s
    async with engine.connect() as conn:
        while time.monotonic() < deadline:
            now_stored = int(
                await conn.scalar(
                    text("SELECT count(acknowledged_at) FROM msg_receipts WHERE instruction_id = :i"),
                    {"i": instruction_id},
                )
                or 0
            )
            await conn.commit()
            if now_stored != stored:
                stored, stored_at = now_stored, time.time()
            if stored >= n:
                break
            if results_task.done():  # the clients gave up waiting: nothing more will come
                sent = len(_latencies(results_task.result(), instruction_id, 0)[1])
                if stored >= sent:
                    break
            await asyncio.sleep(0.02)
    return stored, stored_at


async def eqian_round(
    district: District,
    servers: Servers,
    processes: int,
    wait_s: float,
    gate: int = 100,
    *,
    connect_s: float = 120.0,
    broadcasts: int = 3,
    pause_s: float = 3.0,
) -> dict[str, Any]:
    import httpx
    from sqlalchemy import text

    from eqian.core.db import make_engine

    n = len(district.tokens)
    urls = [f"ws://127.0.0.1:{p}/ws" for p in servers.ports]
    engine = make_engine(district.database_url)
    async with engine.begin() as conn:
        # The units were "seen" just now (as after a normal working day), not minutes ago at seeding.
        await conn.execute(text("UPDATE auth_sessions SET last_seen_at = now()"))
    pool = ClientPool(district.tokens, [[urls[i % len(urls)]] for i in range(n)], processes, gate)
    recv_each: list[list[float]] = []
    posts, after_last, per_s, stored_each, sent_each, confirmed_each = [], [], [], [], [], []
    cpu_each: list[dict[str, float]] = []
    results: list[dict[str, Any]] = []
    meter = CpuMeter(
        {
            "workers": lambda: [p.pid for p in servers.procs],
            "clients": lambda: [p.pid for p in pool.procs],
            "postgres": postgres_pids,
        }
    )
    try:
        connected = await pool.connect(connect_s)
        print(f"eqian: {connected['ok']}/{n} clients connected in {connected['seconds']:.1f} s")
        deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=4)).isoformat()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{servers.ports[0]}",
            headers={"Authorization": f"Bearer {district.officer_token}"},
            timeout=120,
        ) as http:
            for k in range(broadcasts):
                await asyncio.sleep(pause_s)  # the previous broadcast's receipts settle
                meter.start()
                t0 = time.time()
                r = await http.post(
                    "/api/v1/messaging/instructions",
                    json={
                        "channel_id": district.channel_id,
                        "title": f"春季安全检查（第{k + 1}次）",
                        "body": "请各单位于今日内完成消防通道自查并确认。",
                        "deadline": deadline,
                    },
                )
                posts.append(round((time.time() - t0) * 1000, 1))
                if r.status_code >= 300:
                    raise RuntimeError(f"instruction POST answered {r.status_code}: {r.text[:300]}")
                instruction_id = int(r.json()["id"])
                results_task = asyncio.create_task(pool.results([instruction_id], wait_s))
                stored, stored_at = await _wait_stored(engine, instruction_id, n, wait_s, results_task)
                results = await results_task
                cpu_each.append({**meter.stop(), "wall": round(time.time() - t0, 2)})
                recv, ack_sent, acked = _latencies(results, instruction_id, t0)
                recv_each.append(recv)
                stored_each.append(stored)
                sent_each.append(len(ack_sent))
                confirmed_each.append(len(acked))
                if stored_at is not None and ack_sent and stored >= len(ack_sent):
                    after_last.append(round((stored_at - max(ack_sent)) * 1000, 1))
                    per_s.append(round(stored / max(1e-6, stored_at - min(ack_sent)), 1))
                print(
                    f"eqian broadcast {k + 1}: p99 {percentile(recv, 99) * 1000:.0f} ms, "
                    f"acks stored {after_last[-1] if after_last else '—'} ms after the last"
                )
        rss = [rss_kib(p.pid) for p in servers.procs]
    finally:
        await engine.dispose()
        await pool.close()
    return {
        "connected": connected["ok"],
        "connect_s": round(connected["seconds"], 1),
        **_delivery(recv_each),
        "post_ms": posts,
        "acks_sent": sent_each,
        "acks_confirmed": confirmed_each,
        "acks_stored": stored_each,
        "all_acks_stored_after_last_ack_ms": after_last,
        "acks_stored_per_s": per_s,
        "cpu_s": cpu_each,
        "worker_rss_mib": [round(cur / 1024, 1) for cur, _ in rss],
        "worker_peak_rss_mib": [round(peak / 1024, 1) for _, peak in rss],
        "duplicates": sum(n - 1 for r in results for _, _, n in r["seen"] if n > 1),
        "errors": [e for r in results for e in r["errors"]][:5],
    }


async def baseline_round(
    tokens: list[str],
    processes: int,
    wait_s: float,
    workers: int = 2,
    gate: int = 100,
    *,
    connect_s: float = 120.0,
    broadcasts: int = 3,
    pause_s: float = 3.0,
) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    ctx = mp.get_context("spawn")
    control = secrets.token_urlsafe(16)
    tmp = Path(tempfile.mkdtemp(prefix="eqian-bare-"))
    token_file = tmp / "tokens.txt"
    token_file.write_text("\n".join(tokens))
    ports = free_ports(workers)
    procs = [
        ctx.Process(target=bare_server_process, args=(p, str(token_file), control), daemon=True)
        for p in ports
    ]
    for p in procs:
        p.start()
    for port in ports:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            await asyncio.sleep(0.05)
    n = len(tokens)
    urls = [f"ws://127.0.0.1:{p}" for p in ports]
    pool = ClientPool(tokens, [[urls[i % len(urls)]] for i in range(n)], processes, gate)
    message = {
        "type": "message",
        "kind": "instruction",
        "sender": {"id": 1, "name": "值班民警", "role": "station_officer"},
        "body": "请各单位于今日内完成消防通道自查并确认。",
        "reply_to": None,
        "mentions": [],
        "attachments": [],
        "instruction": {
            "id": 0,
            "title": "春季安全检查",
            "deadline": dt.datetime.now(dt.UTC).isoformat(),
            "requires_ack": True,
        },
        "assistance": None,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    recv_each: list[list[float]] = []
    confirmed_each: list[int] = []
    cpu_each: list[dict[str, float]] = []
    meter = CpuMeter(
        {
            "servers": lambda: [p.pid for p in procs if p.pid is not None],
            "clients": lambda: [p.pid for p in pool.procs],
        }
    )
    acks = 0
    try:
        connected = await pool.connect(connect_s)
        print(f"baseline: {connected['ok']}/{n} clients connected in {connected['seconds']:.1f} s")
        controls = [await connect(u, compression=None) for u in urls]
        for c in controls:
            await c.send(json.dumps({"type": "auth", "token": control}))
        for k in range(broadcasts):
            await asyncio.sleep(pause_s)
            meter.start()
            t0 = time.time()
            await asyncio.gather(
                *(c.send(json.dumps({"type": "broadcast", "message": message})) for c in controls)
            )
            await asyncio.gather(*(c.recv() for c in controls))
            results = await pool.results([k + 1], wait_s)  # the bare server's ids are its seqs
            cpu_each.append({**meter.stop(), "wall": round(time.time() - t0, 2)})
            recv, _ack_sent, acked = _latencies(results, k + 1, t0)
            recv_each.append(recv)
            confirmed_each.append(len(acked))
            print(f"baseline broadcast {k + 1}: p99 {percentile(recv, 99) * 1000:.0f} ms")
        for c in controls:
            await c.send('{"type":"stats"}')
            acks += int(json.loads(await c.recv())["acks"])
            await c.close()
        rss = [rss_kib(p.pid) for p in procs if p.pid is not None]
    finally:
        await pool.close()
        for p in procs:
            p.kill()
            p.join(5)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "connected": connected["ok"],
        "connect_s": round(connected["seconds"], 1),
        **_delivery(recv_each),
        "acks_confirmed": confirmed_each,
        "acks_received": acks,
        "cpu_s": cpu_each,
        "rss_mib": [round(cur / 1024, 1) for cur, _ in rss],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    n = args.clients or (2000 if args.quick else 20000)
    processes = args.client_processes or (2 if n <= 2000 else 4)
    timeout = 60.0 if n <= 2000 else 300.0
    connect_s = args.connect_timeout or (120.0 if n <= 2000 else 900.0)
    print(
        f"broadcast benchmark: {n} clients in {processes} client processes, 2 workers, "
        f"PostgreSQL + Redis, {args.broadcasts} broadcasts per round"
    )
    load_before = os.getloadavg()
    database_url = await create_database(args.pg, BENCH_DB)
    redis_proc, redis_url = start_redis()
    servers: Servers | None = None
    try:
        t = time.monotonic()
        district = await seed_district(database_url, n)
        print(f"seeded {n} units, users and tokens in {time.monotonic() - t:.1f} s")
        servers = start_workers(database_url, redis_url)
        eqian = await eqian_round(
            district,
            servers,
            processes,
            timeout,
            args.connect_concurrency,
            connect_s=connect_s,
            broadcasts=args.broadcasts,
        )
        print("eqian:", json.dumps(eqian, ensure_ascii=False))
        servers.stop()
        servers = None
        baseline = await baseline_round(
            district.tokens, processes, timeout, gate=args.connect_concurrency, broadcasts=args.broadcasts
        )
        print("baseline:", json.dumps(baseline, ensure_ascii=False))
    finally:
        if servers is not None:
            servers.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
        if not args.keep:
            await drop_database(args.pg, BENCH_DB)
    load_after = os.getloadavg()
    stored_after = eqian["all_acks_stored_after_last_ack_ms"]
    return {
        "clients": n,
        "workers": 2,
        "broadcasts": args.broadcasts,
        "connected": eqian["connected"],
        "connect_s": eqian["connect_s"],
        "received": eqian["received"],
        "p50_ms": eqian["p50_ms"],
        "p99_ms": eqian["p99_ms"],
        "p99_each_ms": eqian["p99_each_ms"],
        "post_ms": eqian["post_ms"],
        "fanout_p99_ms": eqian["fanout_p99_ms"],
        "all_acks_stored_after_last_ack_ms": stored_after,
        "worst_acks_stored_after_last_ack_ms": max(stored_after, default=None),
        "acks_stored": eqian["acks_stored"],
        "acks_stored_per_s": eqian["acks_stored_per_s"],
        "cpu_s": eqian["cpu_s"],
        "baseline_cpu_s": baseline["cpu_s"],
        "worker_rss_mib": eqian["worker_rss_mib"],
        "worker_peak_rss_mib": eqian["worker_peak_rss_mib"],
        "duplicates": eqian["duplicates"],
        "baseline_connected": baseline["connected"],
        "baseline_connect_s": baseline["connect_s"],
        "baseline_received": baseline["received"],
        "baseline_p50_ms": baseline["p50_ms"],
        "baseline_p99_ms": baseline["p99_ms"],
        "baseline_p99_each_ms": baseline["p99_each_ms"],
        "baseline_fanout_p99_ms": baseline["fanout_p99_ms"],
        "p99_ratio": round(eqian["p99_ms"] / baseline["p99_ms"], 2) if baseline["p99_ms"] else None,
        "fanout_ratio": (
            round(eqian["fanout_p99_ms"] / baseline["fanout_p99_ms"], 2)
            if baseline["fanout_p99_ms"]
            else None
        ),
        "sched_autogroup": sched_autogroup(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }


def main(argv: list[str] | None = None, print_fn: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 clients instead of 20,000")
    parser.add_argument("--clients", type=int, default=0)
    parser.add_argument(
        "--broadcasts", type=int, default=3, help="instructions per round, one after another (pooled)"
    )
    parser.add_argument("--client-processes", type=int, default=0)
    parser.add_argument("--pg", default=os.environ.get("EQIAN_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--connect-timeout", type=float, default=0, help="seconds to wait for all sockets")
    parser.add_argument(
        "--connect-concurrency", type=int, default=32, help="handshakes in flight per client process"
    )
    args = parser.parse_args(argv)
    limit = raise_nofile(65536)
    print_fn(f"open-file limit {limit}")
    sys.path.insert(0, str(ROOT / "src"))
    figures = asyncio.run(main_async(args))
    print_fn(json.dumps(figures))


if __name__ == "__main__":
    main()
