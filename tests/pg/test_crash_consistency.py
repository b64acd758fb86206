"""kill -9 under mixed load (issue 8 §10): nothing acknowledged is lost, nothing is half imported,
no outbox event is lost or delivered twice after de-duplication.

Two single-process eqian servers share one PostgreSQL database and one Redis, each running the
outbox dispatcher and the periodic jobs, with the DingTalk robot pointing at a local listener that
checks DingTalk's signature and records every message. Clients alternate between the servers:

- incident intake with an ``Idempotency-Key``, retried with the same key on the other server after
  a connection error until it is answered; every 2xx is recorded with its incident id;
- a mediation case (service-point staff) and an enterprise request (a unit) in turn;
- instructions to station A's channel with a deadline two seconds out: nobody acknowledges them,
  so each one is escalated by a server's job and its overdue notice leaves through the outbox
  (``messaging.instruction_overdue`` → ``notifications.send``) to the DingTalk listener;
- HR-sheet imports over HTTP (``POST /api/v1/workers/import``, 40 new workers each);
- every other round, ``eqian import incidents`` of a 110 export as a subprocess, killed with -9
  at a random moment too.

Each round SIGKILLs one server at a random moment and starts it again on the same port. At the
end, with both up and the outbox drained: every acknowledged write is in the database exactly
once, each import is all or nothing, every instruction's overdue notice reached the listener
exactly once after de-duplication by instruction (raw repeats are counted and printed:
at-least-once is allowed at that boundary), no answer was a 5xx, and ``eqian audit verify`` passes.

``EQIAN_CRASH_ROUNDS`` sets the number of kills (default 5 for CI; the recorded run used 24).
Needs PostgreSQL (EQIAN_TEST_PG_URL; a database ``<name>_crash`` is created and dropped) and Redis.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench import broadcast as harness
from sqlalchemy import make_url, select, text

from eqian.core.db import make_engine, make_sessionmaker, utcnow
from eqian.core.ids import make_resident_id
from tests.mediation.helpers import make_med_world
from tests.notifications.robot import RobotServer
from tests.pg import _cluster

PG_URL = os.environ.get("EQIAN_TEST_PG_URL", "")
ROUNDS = int(os.environ.get("EQIAN_CRASH_ROUNDS", "5"))
SECRET = "SECcrash0123456789abcdef0123456789abcdef0123456789abcdef01234567"
SHEET_ROWS = 40
EXPORT_ROWS = 300
PENDING = text("SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL")
INSTRUCTION_LINK = re.compile(r"/messaging\?instruction=(\d+)")

pytestmark = pytest.mark.skipif(
    not PG_URL and os.environ.get("EQIAN_REQUIRE_PG") != "1",
    reason="needs PostgreSQL and Redis (EQIAN_TEST_PG_URL)",
)

CALLS = (
    "吾悦广场三楼有人打架，请求出警",
    "织里贝贝童装有限公司门口电动车被盗",
    "康泰小区物业反映楼道堆放杂物有火灾隐患",
    "织南安安童装厂两名工人因工资发生争执",
    "中通快递织南网点有人冒充快递员诈骗",
)


@dataclass
class Ledger:
    """What the clients were told: only a 2xx counts as acknowledged."""

    incidents: dict[str, int] = field(default_factory=dict)  # idempotency key -> incident id
    keys_issued: list[str] = field(default_factory=list)
    cases: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    instructions: list[int] = field(default_factory=list)
    sheets: dict[int, bool] = field(default_factory=dict)  # sheet number -> acknowledged
    exports: dict[int, int | None] = field(default_factory=dict)  # export number -> exit code (None: killed)
    connection_errors: int = 0  # broken after the request was sent: outcome unknown to the client
    refused: int = 0
    unanswered: Counter[str] = field(default_factory=Counter)  # writes whose answer was lost
    problems: list[str] = field(default_factory=list)

    def bad_status(self, what: str, r: httpx.Response) -> None:
        self.problems.append(f"{what}: HTTP {r.status_code} {r.text[:300]}")


class Load:
    def __init__(
        self, cluster: _cluster.Cluster, headers: dict[str, dict[str, str]], channel_id: int
    ) -> None:
        self.cluster = cluster
        self.headers = headers
        self.channel_id = channel_id
        self.ledger = Ledger()
        self.stop = asyncio.Event()
        self.turn = 0
        self.last_deadline = dt.datetime.now(dt.UTC)

    def _base(self, offset: int = 0) -> str:
        # Clients alternate between the servers; a retry goes to the other one.
        self.turn += 1
        return self.cluster.url((self.turn + offset) % self.cluster.count)

    async def _post_once(self, http: httpx.AsyncClient, path: str, **kw: Any) -> httpx.Response | None:
        """One write; None when the connection broke after the request may have been sent (the
        client cannot know whether it was applied). A refused connection never carried the
        request, so it goes to the other server at once."""
        for _ in range(50):
            try:
                return await http.post(self._base() + path, **kw)
            except httpx.ConnectError:
                self.ledger.refused += 1
                await asyncio.sleep(0.05)
            except httpx.TransportError:
                self.ledger.connection_errors += 1
                return None
        self.ledger.problems.append(f"{path}: no server accepted a connection")
        return None

    async def intake(self, seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(timeout=30) as http:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                self.ledger.keys_issued.append(key)
                phone = f"139{rng.randint(10**7, 10**8 - 1)}"
                body = {"description": rng.choice(CALLS), "caller_phone": phone}
                headers = {**self.headers["station_officer"], "Idempotency-Key": key}
                deadline = time.monotonic() + 120
                # The same key until answered: a retry after a kill must not make a second incident.
                while time.monotonic() < deadline:
                    r = await self._post_once(http, "/api/v1/incidents", json=body, headers=headers)
                    if r is None:
                        await asyncio.sleep(0.2)
                        continue
                    if r.status_code == 201:
                        got = int(r.json()["id"])
                        if self.ledger.incidents.setdefault(key, got) != got:
                            self.ledger.problems.append(f"key {key} answered two incident ids")
                    else:
                        self.ledger.bad_status("incident intake", r)
                    break
                else:
                    self.ledger.problems.append(f"incident key {key} never answered")
                await asyncio.sleep(rng.uniform(0.02, 0.1))

    async def other_writes(self) -> None:
        n = 0
        async with httpx.AsyncClient(timeout=30) as http:
            while not self.stop.is_set():
                n += 1
                if n % 2:
                    r = await self._post_once(
                        http,
                        "/api/v1/mediation/cases",
                        json={
                            "source": "service_point",
                            "dispute_type": "family",
                            "summary": f"邻里纠纷 {n}",
                            "parties": [{"name": "张三", "role": "applicant"}],
                        },
                        headers=self.headers["service_point_staff"],
                    )
                    kind, into = "case", self.ledger.cases
                else:
                    r = await self._post_once(
                        http,
                        "/api/v1/requests",
                        json={"kind": "other", "title": f"门口路灯坏了 {n}", "body": "请协调修复"},
                        headers=self.headers["unit_security"],
                    )
                    kind, into = "request", self.ledger.requests
                if r is None:
                    self.ledger.unanswered[kind] += 1
                elif r.status_code == 201:
                    into.append(int(r.json()["id"]))
                else:
                    self.ledger.bad_status(kind, r)
                await asyncio.sleep(0.1)

    async def instructions(self) -> None:
        n = 0
        async with httpx.AsyncClient(timeout=30) as http:
            while not self.stop.is_set():
                n += 1
                # Far enough out that a busy server still finds it in the future.
                deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
                self.last_deadline = max(self.last_deadline, deadline)
                r = await self._post_once(
                    http,
                    "/api/v1/messaging/instructions",
                    json={
                        "channel_id": self.channel_id,
                        "title": f"第{n}号演练指令",
                        "body": "请于两秒内确认",
                        "deadline": deadline.isoformat(),
                    },
                    headers=self.headers["station_officer"],
                )
                if r is None:
                    self.ledger.unanswered["instruction"] += 1
                elif r.status_code in (200, 201):
                    self.ledger.instructions.append(int(r.json()["id"]))
                else:
                    self.ledger.bad_status("instruction", r)
                await asyncio.sleep(0.4)

    async def sheets(self, unit_id: int) -> None:
        n = 0
        async with httpx.AsyncClient(timeout=60) as http:
            while not self.stop.is_set():
                n += 1
                r = await self._post_once(
                    http,
                    "/api/v1/workers/import",
                    data={"unit_id": str(unit_id)},
                    files={"file": (f"hr-{n}.csv", hr_sheet(n).encode("utf-8-sig"), "text/csv")},
                    headers=self.headers["station_officer"],
                )
                if r is None:
                    self.ledger.sheets[n] = False
                elif r.status_code == 201:
                    self.ledger.sheets[n] = True
                else:
                    self.ledger.sheets[n] = False
                    self.ledger.bad_status(f"HR sheet {n}", r)
                await asyncio.sleep(0.5)


def sheet_ids(n: int) -> list[str]:
    born = dt.date(1980, 1, 1) + dt.timedelta(days=n)
    return [make_resident_id("330502", born, i) for i in range(SHEET_ROWS)]


def hr_sheet(n: int) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["姓名", "身份证号", "手机号", "入职日期"])
    for i, rid in enumerate(sheet_ids(n)):
        w.writerow([f"员工{n}-{i}", rid, f"139{n:04d}{i:04d}", "2026-01-05"])
    return out.getvalue()


def write_export(path: Path, n: int, station_id: int) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["接警编号", "报警时间", "报警电话", "事发地址", "报警内容", "管辖派出所"])
        start = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)
        for i in range(EXPORT_ROWS):
            at = (start + dt.timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M")
            call = f"{CALLS[i % 5]}（{n}-{i}）"
            w.writerow([f"K{n:03d}-{i:04d}", at, "13900000000", f"织里镇大港路{i}号", call, station_id])


async def _seed(database_url: str) -> tuple[dict[str, dict[str, str]], int, int, int]:
    from eqian.messaging.models import Channel
    from eqian.messaging.service import ensure_channels

    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            mw = await make_med_world(s)
            await ensure_channels(s)
            channel = await s.scalar(select(Channel.id).where(Channel.key == f"station:{mw.world.station_a}"))
        assert channel is not None
        return mw.headers, int(channel), mw.world.units["a1"], mw.world.station_a
    finally:
        await engine.dispose()


async def _wait_drained(
    database_url: str, robot: RobotServer, want: set[int], seconds: float, due: dt.datetime
) -> None:
    """Until no outbox event is pending and the listener has every instruction's notice."""
    from eqian.messaging.service import escalate_overdue

    engine = make_engine(database_url)
    try:
        # Instructions whose deadline falls after the servers' last job run are escalated here, by
        # the same idempotent job the servers run every minute, as it will run at the last deadline.
        async with make_sessionmaker(engine)() as s:
            await escalate_overdue(s, now=max(due, utcnow()))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                pending = await conn.scalar(PENDING)
            if pending == 0 and want <= _delivered(robot):
                return
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def _delivered(robot: RobotServer) -> set[int]:
    return {int(m) for m in _raw_deliveries(robot)}


def _raw_deliveries(robot: RobotServer) -> list[str]:
    found: list[str] = []
    for message in list(robot.accepted):
        match = INSTRUCTION_LINK.search(str(message.get("text", {}).get("content", "")))
        found.append(match.group(1) if match else "?")
    return found


async def test_kill_9_under_mixed_load_loses_nothing_acknowledged() -> None:
    marks = {"start": time.monotonic()}
    rng = random.Random(int(os.environ.get("EQIAN_CRASH_SEED", "8")))
    name = f"{make_url(PG_URL).database}_crash"
    database_url = await harness.create_database(PG_URL, name)
    redis_proc, redis_url = _cluster.redis()
    robot = RobotServer(SECRET).__enter__()
    cluster: _cluster.Cluster | None = None
    tmp = Path(tempfile.mkdtemp(prefix="eqian-crash-"))
    exports: dict[int, subprocess.Popen[str]] = {}
    try:
        await _cluster.build_schema(database_url)
        headers, channel_id, unit_a1, station_a = await _seed(database_url)
        cluster = _cluster.Cluster(
            database_url,
            redis_url,
            env={
                "EQIAN_OUTBOX_POLL_SECONDS": "0.5",
                "EQIAN_DINGTALK_WEBHOOK": robot.url,
                "EQIAN_DINGTALK_SECRET": SECRET,
            },
        )
        marks["seeded"] = time.monotonic()
        cluster.start_all()
        marks["up"] = time.monotonic()
        load = Load(cluster, headers, channel_id)
        ledger = load.ledger
        import_seconds: list[float] = []
        export_tasks: list[asyncio.Task[None]] = []

        async def run_export(r: int, path: Path, kill_at: float | None) -> None:
            started = time.monotonic()
            proc = exports[r] = cluster.popen_eqian("import", "incidents", str(path), "--as", "bureau_admin")
            while proc.poll() is None:
                if kill_at is not None and time.monotonic() - started >= kill_at:
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                await asyncio.sleep(0.05)
            out, _ = await asyncio.to_thread(proc.communicate)
            ledger.exports[r] = None if proc.returncode == -signal.SIGKILL else proc.returncode
            if proc.returncode == 0 and kill_at is None:
                import_seconds.append(time.monotonic() - started)
            elif proc.returncode not in (0, -signal.SIGKILL):
                ledger.problems.append(f"export {r} import failed ({proc.returncode}): {out[-500:]}")

        tasks = [
            asyncio.create_task(load.intake(1)),
            asyncio.create_task(load.intake(2)),
            asyncio.create_task(load.other_writes()),
            asyncio.create_task(load.instructions()),
            asyncio.create_task(load.sheets(unit_a1)),
        ]
        for r in range(ROUNDS):
            if r % 2 == 0:
                # A 110 export import: the first runs to the end and gives the length of a run;
                # the others are killed with -9 at a random moment of theirs.
                path = tmp / f"export-{r}.csv"
                write_export(path, r, station_a)
                kill_at = None if r == 0 else rng.uniform(0.3, 1.0) * (import_seconds or [15.0])[0]
                export_tasks.append(asyncio.create_task(run_export(r, path, kill_at)))
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            victim = r % cluster.count
            await asyncio.to_thread(cluster.kill, victim)
            await asyncio.to_thread(cluster.start, victim)
        marks["rounds"] = time.monotonic()
        await asyncio.sleep(1.0)
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, *export_tasks), 180)

        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                instructions = set(await conn.scalars(text("SELECT id FROM msg_instructions")))
            marks["stopped"] = time.monotonic()
            await _wait_drained(database_url, robot, instructions, 240, load.last_deadline)
            marks["drained"] = time.monotonic()
            async with engine.connect() as conn:
                api_incidents = list(await conn.scalars(text("SELECT id FROM incidents WHERE source='api'")))
                keys = Counter(await conn.scalars(text("SELECT key FROM idempotency_keys")))
                cases = set(await conn.scalars(text("SELECT id FROM mediation_cases")))
                requests_ = set(await conn.scalars(text("SELECT id FROM enterprise_requests")))
                stuck = await conn.scalar(PENDING)
                hired = dict(
                    (
                        await conn.execute(
                            text(
                                "SELECT p.id_number, count(e.id) FROM workforce_persons p LEFT JOIN"
                                " workforce_employments e ON e.person_id = p.id GROUP BY p.id_number"
                            )
                        )
                    ).all()
                )
                imported = Counter(
                    str(k).removeprefix("n:").split("-")[0]
                    for k in await conn.scalars(
                        text("SELECT source_key FROM incidents WHERE source='import'")
                    )
                )
                retried = (
                    await conn.execute(
                        text(
                            "SELECT topic, attempts, last_error FROM outbox_events"
                            " WHERE attempts > 0 ORDER BY id LIMIT 20"
                        )
                    )
                ).all()
                escalated = set(
                    await conn.scalars(text("SELECT id FROM msg_instructions WHERE escalated_at IS NOT NULL"))
                )
        finally:
            await engine.dispose()
        verify = cluster.eqian("audit", "verify")
        logs = cluster.logs()
    finally:
        for proc in exports.values():
            _cluster.stop_process(proc)  # type: ignore[arg-type]
        if cluster is not None:
            cluster.stop()
        robot.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)
        _cluster.stop_process(redis_proc)
        await harness.drop_database(PG_URL, name)

    problems = list(ledger.problems)
    # Intake: every key was retried until answered, so each key is exactly one incident.
    acked = ledger.incidents
    if sorted(api_incidents) != sorted(acked.values()):
        lost = set(acked.values()) - set(api_incidents)
        extra = set(api_incidents) - set(acked.values())
        problems.append(f"incidents: {len(lost)} acknowledged lost, {len(extra)} never acknowledged")
    if len(acked) != len(ledger.keys_issued) or any(keys[k] != 1 for k in acked):
        problems.append(f"idempotency keys: {len(acked)} answered of {len(ledger.keys_issued)}")
    for label, got, stored in (
        ("cases", ledger.cases, cases),
        ("requests", ledger.requests, requests_),
        ("instructions", ledger.instructions, instructions),
    ):
        if missing := set(got) - stored:
            problems.append(f"{label}: acknowledged but lost {sorted(missing)}")
    # Imports: all or nothing, and all when acknowledged.
    for n, ok in ledger.sheets.items():
        counts = {hired.get(rid, 0) for rid in sheet_ids(n)}
        if counts not in ({0}, {1}) or (ok and counts != {1}):
            problems.append(f"HR sheet {n} (acknowledged {ok}): employments per row {sorted(counts)}")
    for r, code in ledger.exports.items():
        rows = imported.get(f"K{r:03d}", 0)
        if rows not in (0, EXPORT_ROWS) or (code == 0 and rows != EXPORT_ROWS):
            problems.append(f"110 export {r} (exit {code}): {rows} of {EXPORT_ROWS} rows imported")
    # Outbox: every instruction escalated, and its notice at the listener once after de-duplication.
    raw = _raw_deliveries(robot)
    delivered = _delivered(robot)
    if escalated != instructions:
        problems.append(f"instructions never escalated: {sorted(instructions - escalated)}")
    if delivered != instructions:
        missing, unexpected = sorted(instructions - delivered), sorted(delivered - instructions)
        problems.append(f"DingTalk: missing {missing}, unexpected {unexpected}")
    if stuck:
        problems.append(f"{stuck} outbox events still pending")
    if robot.rejected:
        problems.append(f"listener refused {robot.rejected[:5]}")
    if verify.returncode != 0:
        problems.append("eqian audit verify: " + verify.stdout[-1000:])
    if "Traceback" in logs and "Internal Server Error" in logs:
        problems.append("server log:\n" + logs[-3000:])
    repeats = len(raw) - len(set(raw))
    print(
        f"\ncrash consistency: {ROUNDS} kills, {cluster.starts} server starts,"
        f" {ledger.refused} refused connections, {ledger.connection_errors} broken mid-request;"
        f" acknowledged {len(acked)} incidents, {len(ledger.cases)} cases, {len(ledger.requests)} requests,"
        f" {len(ledger.instructions)} instructions,"
        f" {sum(ledger.sheets.values())}/{len(ledger.sheets)} HR sheets;"
        f" answers lost {dict(ledger.unanswered)}; 110 exports {ledger.exports}"
        f" rows {dict(imported)}; DingTalk {len(raw)} raw, {len(delivered)} distinct, {repeats} repeats;"
        f" outbox events retried {len(retried)} {[tuple(r) for r in retried[:5]]};"
        f" phases {[(k, round(v - marks['start'], 1)) for k, v in marks.items()]}"
    )
    assert not problems, "\n".join(problems[:30])
    # The kills really hit the clients, and there was something to lose.
    assert ledger.connection_errors > 0
    assert instructions
    assert acked
