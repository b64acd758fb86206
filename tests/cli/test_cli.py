"""The ``eqian`` command end to end, on a fresh SQLite file under ``EQIAN_VAR_DIR``.

Most tests drive the Typer app in-process with ``CliRunner`` (the command runs its own
``asyncio.run``, so these are plain sync tests); a few run ``python -m eqian`` in a clean
environment, because only a fresh interpreter shows what a command imports by itself.
These tests are SQLite-only and do not use the shared database fixtures.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from typer.testing import CliRunner, Result

from eqian.cli.main import app
from eqian.core.config import Settings, get_settings
from eqian.core.errors import AppError
from eqian.core.ids import make_credit_code
from eqian.core.passwords import verify_password
from eqian.organizations.transfer import COLUMNS
from eqian.web.app import create_app
from tests.conftest import built_once

# Under `--dist loadgroup` one worker takes these tests, so the other never waits for the seed.
pytestmark = pytest.mark.xdist_group("cli")
DEMO_ACCOUNTS = (
    "bureau_admin",
    "station_officer",
    "liaison_officer",
    "unit_security",
    "mediator",
    "service_point_staff",
    "partner_officer",
)
DEMO_UNITS = 200
STRONG_PASSWORD = "Zhili-Strong-365"
HEADER = [zh for _, zh in COLUMNS]
_serial = 0


def fresh_code() -> str:
    global _serial
    _serial += 1
    return make_credit_code(f"91330502C{_serial:08d}")


def _clean_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQIAN_")}
    env["EQIAN_VAR_DIR"] = str(var_dir)
    return env


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """EQIAN_VAR_DIR in a fresh directory, no other EQIAN_* settings, no .env from the checkout."""
    for key in [k for k in os.environ if k.startswith("EQIAN_")]:
        monkeypatch.delenv(key)
    var = tmp_path / "var"
    monkeypatch.setenv("EQIAN_VAR_DIR", str(var))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield var
    get_settings.cache_clear()


def cli(*args: str, input: str | None = None) -> Result:
    get_settings.cache_clear()  # settings are cached per process; each test has its own var dir
    return CliRunner().invoke(app, list(args), input=input)


def cli_process(var: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "eqian", *args],
        env=_clean_env(var),
        cwd=var.parent,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def counts(output: str) -> tuple[int, int, int]:
    """(created, updated, unchanged) from an import's summary, however Rich wrapped the line."""
    found = re.search(r"create\s+(\d+),\s+update\s+(\d+),\s+unchanged\s+(\d+)", output)
    assert found, output
    created, updated, unchanged = (int(g) for g in found.groups())
    return created, updated, unchanged


def query(var: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(var / "eqian.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(var: Path, table: str) -> int:
    [(n,)] = query(var, f"SELECT count(*) FROM {table}")  # noqa: S608 - our table names
    return int(n)


def station_id(var: Path, code: str) -> int:
    [(sid,)] = query(var, "SELECT id FROM stations WHERE code = ?", code)
    assert isinstance(sid, int)
    return sid


def write_units_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows([r.get(name, "") for name, _ in COLUMNS] for r in rows)
    return path


def unit_row(code: str | None = None, **values: str) -> dict[str, str]:
    return {
        "name": "织里命令行童装厂",
        "credit_code": code or fresh_code(),
        "category": "童装企业",
        "station": "织北派出所",
        **values,
    }


@dataclass(frozen=True)
class SeededDb:
    path: Path
    output: str  # what `eqian demo seed` printed


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> SeededDb:
    """`eqian db upgrade` then `eqian demo seed` in a fresh var dir, run once per test run (the
    full demo takes half a minute, and xdist may spread these tests over both workers): the file
    is copied for each test that needs it, the output kept for the test of the seed command."""
    with built_once(tmp_path_factory, "cli-seeded") as (shared, to_build):
        var = shared / "var"
        if to_build:
            with pytest.MonkeyPatch.context() as mp:
                for key in [k for k in os.environ if k.startswith("EQIAN_")]:
                    mp.delenv(key)
                mp.setenv("EQIAN_VAR_DIR", str(var))
                mp.chdir(shared)
                try:
                    ok(cli("db", "upgrade"))
                    output = ok(cli("demo", "seed", "--units", str(DEMO_UNITS))).output
                finally:
                    get_settings.cache_clear()
            (shared / "seed-output.txt").write_text(output, encoding="utf-8")
    return SeededDb(var / "eqian.db", (shared / "seed-output.txt").read_text(encoding="utf-8"))


@pytest.fixture
def seeded(var_dir: Path, seeded_db: SeededDb) -> Path:
    var_dir.mkdir()
    shutil.copy(seeded_db.path, var_dir / "eqian.db")
    return var_dir


# --- db upgrade and demo seed -------------------------------------------------------------------


def test_db_upgrade_creates_the_database(var_dir: Path) -> None:
    assert not var_dir.exists()
    ok(cli("db", "upgrade"))
    tables = {name for (name,) in query(var_dir, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "units", "stations", "users", "audit_log"} <= tables
    assert count(var_dir, "units") == 0
    ok(cli("db", "upgrade"))  # again: nothing to do, still fine


def test_python_dash_m_eqian_in_a_clean_environment(tmp_path: Path) -> None:
    var = tmp_path / "var"
    done = cli_process(var, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert (var / "eqian.db").exists()
    done = cli_process(var, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "0 rows" in done.stdout


def test_demo_seed_prints_accounts_and_counts_and_refuses_to_seed_twice(
    seeded_db: SeededDb, seeded: Path
) -> None:
    var_dir = seeded  # a copy of the file `db upgrade` and `demo seed` made in a fresh var dir
    out = seeded_db.output

    for username in DEMO_ACCOUNTS:
        assert username in out
    assert f"{DEMO_UNITS} 家单位" in out
    assert "3 个派出所" in out
    assert count(var_dir, "units") == DEMO_UNITS
    users = dict(query(var_dir, "SELECT username, password_hash FROM users"))
    assert set(DEMO_ACCOUNTS) <= set(users)  # one account per role, named after it
    assert verify_password(str(users["station_officer"]), "demo-pass-365")
    before = [count(var_dir, t) for t in ("units", "contacts", "users", "stations")]

    again = cli("demo", "seed", "--units", str(DEMO_UNITS))
    assert again.exit_code == 1, again.output
    assert "already has data" in again.output
    skipped = ok(cli("demo", "seed", "--if-empty"))
    assert "skipped" in skipped.output
    assert [count(var_dir, t) for t in ("units", "contacts", "users", "stations")] == before


# --- import and export --------------------------------------------------------------------------


def test_import_good_csv_as_bureau_admin(seeded: Path, tmp_path: Path) -> None:
    north, south = fresh_code(), fresh_code()
    good = write_units_csv(
        tmp_path / "good.csv",
        [unit_row(north), unit_row(south, name="织南命令行物流", category="物流快递", station="织南派出所")],
    )

    out = ok(cli("import", "units", str(good), "--as", "bureau_admin")).output

    assert counts(out) == (2, 0, 0)
    assert count(seeded, "units") == DEMO_UNITS + 2
    stored = dict(
        query(seeded, "SELECT credit_code, station_id FROM units WHERE credit_code IN (?, ?)", north, south)
    )
    assert stored == {north: station_id(seeded, "zhibei"), south: station_id(seeded, "zhinan")}
    assert query(seeded, "SELECT action, actor_name, ip FROM audit_log") == [
        ("unit.import", "bureau_admin", "cli")
    ]


def test_import_bad_csv_lists_every_bad_line_and_writes_nothing(seeded: Path, tmp_path: Path) -> None:
    code = fresh_code()
    bad = write_units_csv(
        tmp_path / "bad.csv",
        [
            unit_row(),  # line 2
            unit_row(code[:-1] + ("1" if code[-1] != "1" else "2")),  # 3: wrong check character
            unit_row(),  # 4
            unit_row(category="玩具厂"),  # 5
            unit_row(station="织南派出所"),  # 6: not station_officer's
        ],
    )

    result = cli("import", "units", str(bad), "--as", "station_officer")

    assert result.exit_code == 1, result.output
    for line in (3, 5, 6):
        assert f"第 {line} 行" in result.output
    for line in (2, 4):
        assert f"第 {line} 行" not in result.output
    assert count(seeded, "units") == DEMO_UNITS
    assert count(seeded, "audit_log") == 0


def test_import_dry_run_reports_and_writes_nothing(seeded: Path, tmp_path: Path) -> None:
    good = write_units_csv(tmp_path / "good.csv", [unit_row(), unit_row(), unit_row()])

    result = ok(cli("import", "units", str(good), "--as", "station_officer", "--dry-run"))

    assert "dry run" in result.output
    assert counts(result.output) == (3, 0, 0)
    assert count(seeded, "units") == DEMO_UNITS
    assert count(seeded, "audit_log") == 0
    bad = write_units_csv(tmp_path / "bad.csv", [unit_row(category="玩具厂")])
    failed = cli("import", "units", str(bad), "--dry-run")
    assert failed.exit_code == 1
    assert "第 2 行" in failed.output


def test_export_xlsx_as_station_officer_holds_only_their_station(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"

    ok(cli("export", "units", str(out), "--as", "station_officer"))

    wb = openpyxl.load_workbook(out, read_only=True)
    try:
        rows = list(wb.active.iter_rows(values_only=True))
    finally:
        wb.close()
    assert list(rows[0]) == HEADER
    station_col = HEADER.index("所属派出所")
    code_col = HEADER.index("统一社会信用代码")
    assert {r[station_col] for r in rows[1:]} == {"织北派出所"}
    expected = {
        c
        for (c,) in query(
            seeded, "SELECT credit_code FROM units WHERE station_id = ?", station_id(seeded, "zhibei")
        )
    }
    assert {r[code_col] for r in rows[1:]} == expected
    assert 0 < len(expected) < DEMO_UNITS


def test_export_then_import_round_trips_with_no_changes(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    ok(cli("export", "units", str(out)))
    before = query(seeded, "SELECT * FROM units ORDER BY id")

    result = ok(cli("import", "units", str(out), "--as", "bureau_admin"))

    assert counts(result.output) == (0, 0, DEMO_UNITS)
    assert query(seeded, "SELECT * FROM units ORDER BY id") == before


@pytest.mark.parametrize("command", ["import", "export"])
def test_unknown_kind_exits_2(seeded: Path, tmp_path: Path, command: str) -> None:
    path = write_units_csv(tmp_path / "u.csv", [unit_row()])
    result = cli(command, "foo", str(path))
    assert result.exit_code == 2
    assert "unknown kind 'foo'" in result.output
    assert count(seeded, "units") == DEMO_UNITS


def test_unknown_acting_user_exits_2(seeded: Path, tmp_path: Path) -> None:
    path = write_units_csv(tmp_path / "u.csv", [unit_row()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the leak below, kept out of other tests' warnings
        result = cli("import", "units", str(path), "--as", "nobody")
        exit_code, output = result.exit_code, result.output
        del result  # its traceback holds the leaked session
        gc.collect()
    assert exit_code == 2
    assert "no such user: nobody" in output
    assert count(seeded, "units") == DEMO_UNITS


def test_unknown_acting_user_leaves_no_connection_open(seeded: Path, tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exit_code = cli("export", "units", str(path), "--as", "nobody").exit_code
        gc.collect()
    assert exit_code == 2
    leaks = [str(w.message) for w in caught if "connection" in str(w.message).lower()]
    assert leaks == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("import", "units", "u.csv", "--as", "mediator"), "无权"),
        (("export", "units", "units.txt"), "不支持的导出文件类型"),
    ],
    ids=["forbidden-import", "bad-export-suffix"],
)
def test_refusals_are_a_message_and_exit_1_not_a_traceback(
    seeded: Path, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    write_units_csv(tmp_path / "u.csv", [unit_row()])
    result = cli(*args)
    assert result.exit_code == 1
    assert not isinstance(result.exception, AppError), result.exception
    assert needle in result.output
    assert count(seeded, "units") == DEMO_UNITS


# --- audit verify -------------------------------------------------------------------------------


def test_audit_verify_passes_then_names_the_tampered_row(seeded: Path, tmp_path: Path) -> None:
    for name in ("one.csv", "two.csv", "three.csv"):
        ok(
            cli(
                "import", "units", str(write_units_csv(tmp_path / name, [unit_row()])), "--as", "bureau_admin"
            )
        )
    assert count(seeded, "audit_log") == 3

    intact = ok(cli("audit", "verify"))
    assert "3 rows" in intact.output

    conn = sqlite3.connect(seeded / "eqian.db")
    with conn:
        # The database refuses edits of audit rows; a forger with the file drops that guard first.
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET actor_name = 'x' WHERE seq = 2")
    conn.close()
    broken = cli("audit", "verify")
    assert broken.exit_code == 1, broken.output
    assert "seq 2" in broken.output
    assert "seq 1" not in broken.output
    assert "seq 3" not in broken.output


# --- user create --------------------------------------------------------------------------------


async def _token(var: Path, username: str, password: str) -> httpx.Response:
    application = create_app(Settings(var_dir=var, secret_key="cli-test-secret"))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_user_create_reads_the_password_from_stdin_and_can_log_in(seeded: Path) -> None:
    zhibei = station_id(seeded, "zhibei")

    result = ok(
        cli(
            "user", "create", "wang_jing", "station_officer", "--station-id", str(zhibei),
            "--display-name", "王警官", input=f"{STRONG_PASSWORD}\n",
        )
    )  # fmt: skip

    assert "wang_jing" in result.output
    [(role, station, display, password_hash)] = query(
        seeded, "SELECT role, station_id, display_name, password_hash FROM users WHERE username = 'wang_jing'"
    )
    assert (role, station, display) == ("station_officer", zhibei, "王警官")
    assert verify_password(str(password_hash), STRONG_PASSWORD)
    assert not verify_password(str(password_hash), STRONG_PASSWORD + "x")
    assert query(seeded, "SELECT action, actor_name FROM audit_log") == [("user.create", "system")]
    get_settings.cache_clear()
    response = asyncio.run(_token(seeded, "wang_jing", STRONG_PASSWORD))
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


@pytest.mark.parametrize(
    ("password", "needle"),
    [("Short-1", "至少 10 位"), ("alllowercaseletters", "至少三类"), ("Wang_Jing-2024", "用户名")],
)
def test_user_create_refuses_a_weak_password_with_a_message(seeded: Path, password: str, needle: str) -> None:
    users_before = count(seeded, "users")
    result = cli("user", "create", "wang_jing", "bureau_admin", input=f"{password}\n")
    assert result.exit_code == 1, result.output
    assert needle in result.output
    assert count(seeded, "users") == users_before


def test_user_create_unknown_role_exits_2(seeded: Path) -> None:
    users_before = count(seeded, "users")
    result = cli("user", "create", "wang_jing", "chief", input=f"{STRONG_PASSWORD}\n")
    assert result.exit_code == 2
    assert "role must be one of" in result.output
    assert count(seeded, "users") == users_before


def test_user_create_role_without_its_anchor_is_refused(seeded: Path) -> None:
    result = cli("user", "create", "wang_jing", "station_officer", input=f"{STRONG_PASSWORD}\n")
    assert result.exit_code == 1
    assert "station_id" in result.output


def test_user_create_works_in_a_fresh_process(seeded: Path) -> None:
    done = cli_process(seeded, "user", "create", "li_ming", "bureau_admin", input=f"{STRONG_PASSWORD}\n")
    assert done.returncode == 0, done.stdout + done.stderr
    [(password_hash,)] = query(seeded, "SELECT password_hash FROM users WHERE username = 'li_ming'")
    assert verify_password(str(password_hash), STRONG_PASSWORD)


# --- index compute ------------------------------------------------------------------------------


def test_index_compute_stores_every_active_unit_and_reports_how_long(seeded: Path) -> None:
    result = ok(cli("index", "compute", "--month", "2026-10", "--nice", "0"))
    active = query(seeded, "SELECT count(*) FROM units WHERE status = 'active'")[0][0]
    assert f"2026-10: {active} 家单位" in result.output
    assert "用时" in result.output
    # SQLite's job is never paced (its write lock is the whole database): nothing to give way for.
    assert "让行" not in result.output
    stored = query(
        seeded,
        "SELECT count(*), min(score) >= 0, max(score) <= 100 FROM safety_index_scores WHERE month = ?",
        "2026-10",
    )
    assert stored == [(active, 1, 1)]
    again = ok(cli("index", "compute", "--month", "2026-10", "--nice", "0"))  # a re-run replaces the month
    assert f"2026-10: {active} 家单位" in again.output
    assert query(seeded, "SELECT count(*) FROM safety_index_scores WHERE month = ?", "2026-10") == [(active,)]
