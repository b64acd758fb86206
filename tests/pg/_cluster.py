"""Real eqian servers on a throwaway PostgreSQL database with Redis, for the crash and soak tests
(and ``bench/soak.py``): start, SIGKILL and restart uvicorn processes, read their workers' RSS,
run the ``eqian`` command against the same database.

The database and Redis helpers are ``bench/broadcast.py``'s; what is added here is a cluster whose
members can be killed and brought back on the same port, with any ``EQIAN_*`` settings.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import broadcast as harness

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
EQIAN = str(Path(sys.executable).with_name("eqian"))


def redis() -> tuple[subprocess.Popen[bytes] | None, str]:
    """A private ``redis-server`` when installed, else EQIAN_TEST_REDIS_URL."""
    if shutil.which("redis-server"):
        # Pub/sub ignores Redis database numbers: a private server keeps other runs' channels out.
        return harness.start_redis()
    url = os.environ.get("EQIAN_TEST_REDIS_URL", "")
    if not url:
        raise RuntimeError("neither redis-server nor EQIAN_TEST_REDIS_URL is available")
    return None, url


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def build_schema(database_url: str) -> None:
    import eqian.web.app  # noqa: F401 - every table the app uses, not only those of all_models
    from eqian.all_models import Base
    from eqian.core.db import make_engine

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


@dataclass
class Cluster:
    """``count`` uvicorn servers on their own ports sharing one database and one Redis. Each server
    is a process group of its own, so SIGKILL takes its workers (``workers`` > 1) with it."""

    database_url: str
    redis_url: str
    count: int = 2
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    var_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="eqian-cluster-")))
    starts: int = 0

    def __post_init__(self) -> None:
        self.ports = [free_port() for _ in range(self.count)]
        self.procs = [None] * self.count
        self.base_env = {
            **os.environ,
            "EQIAN_DATABASE_URL": self.database_url,
            "EQIAN_REDIS_URL": self.redis_url,
            "EQIAN_VAR_DIR": str(self.var_dir),
            "EQIAN_SECRET_KEY": "cluster-secret-key-" + secrets.token_hex(8),
            "EQIAN_LOG_LEVEL": "WARNING",
            "EQIAN_ENV_FILE": "/dev/null",
            "EQIAN_GC_FREEZE": "true",  # as in production (the test process turns it off for itself)
            # Redis pub/sub ignores database numbers: a prefix of our own keeps other runs' topics out.
            "EQIAN_PUBSUB_PREFIX": f"cluster-{secrets.token_hex(4)}",
            **self.env,
        }

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def log_path(self, i: int) -> Path:
        return self.var_dir / f"server{i}.log"

    def start(self, i: int, *, wait: bool = True) -> None:
        # Appending keeps the log of a killed incarnation next to the next one's.
        log = open(self.log_path(i), "ab")  # noqa: SIM115 - lives as long as the server
        cmd = [
            sys.executable, "-m", "uvicorn", "eqian.web.main:app",
            "--host", "127.0.0.1", "--port", str(self.ports[i]), "--workers", str(self.workers),
            "--no-access-log", "--log-level", "warning", "--ws-per-message-deflate", "false",
        ]  # fmt: skip
        self.procs[i] = subprocess.Popen(  # noqa: S603 - our own command
            cmd, env=self.base_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
        log.close()
        self.starts += 1
        if wait:
            self.wait(i)

    def wait(self, i: int, timeout: float = 90) -> None:
        harness.wait_http(self.ports[i], self.procs[i], timeout)

    def start_all(self) -> None:
        for i in range(self.count):
            self.start(i, wait=False)
        for i in range(self.count):
            self.wait(i)

    def kill(self, i: int) -> None:
        """SIGKILL the whole server (master and workers): no shutdown, no cleanup."""
        proc = self.procs[i]
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def worker_pids(self, i: int) -> list[int]:
        """The processes that serve requests: the children of uvicorn's supervisor when
        ``workers`` > 1, the server process itself otherwise."""
        proc = self.procs[i]
        if proc is None:
            return []
        if self.workers == 1:
            return [proc.pid]
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{proc.pid}/task").iterdir():
                children += [int(p) for p in (task / "children").read_text().split()]
        # multiprocessing's resource tracker is a child too; it serves nothing.
        return [p for p in children if "spawn_main" in _cmdline(p)]

    def eqian(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the ``eqian`` command with the servers' settings."""
        return subprocess.run(  # noqa: S603 - our own command
            [EQIAN, *args],
            env=self.base_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen_eqian(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(  # noqa: S603 - our own command
            [EQIAN, *args],
            env=self.base_env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def logs(self) -> str:
        return "\n".join(
            self.log_path(i).read_text(errors="replace")
            for i in range(self.count)
            if self.log_path(i).exists()
        )


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    return harness.rss_kib(pid)[0]
