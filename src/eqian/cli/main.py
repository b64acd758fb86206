"""The ``eqian`` command."""

from __future__ import annotations

import asyncio
import datetime
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eqian import all_models  # noqa: F401 - every table registered, so foreign keys resolve in any command
from eqian.cli.common import actor_session, console
from eqian.cockpit import cli as report_cli
from eqian.core.config import get_settings
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.errors import AppError
from eqian.incidents import cli as incidents_cli
from eqian.mediation import cli as mediation_cli
from eqian.messaging import cli as messaging_cli
from eqian.notifications import channels as notifications_channels
from eqian.safety_index import cli as index_cli

app = typer.Typer(help="e企安·365 — 警企共治平台", no_args_is_help=True)
db_app = typer.Typer(help="数据库 / database", no_args_is_help=True)
demo_app = typer.Typer(help="演示数据 / demo district", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志 / audit log", no_args_is_help=True)
user_app = typer.Typer(help="账号 / accounts", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
outbox_app = typer.Typer(help="事件外发 / transactional outbox", no_args_is_help=True)
environment_app = typer.Typer(help="生态警务 / eco-policing", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
app.add_typer(environment_app, name="environment")
app.add_typer(incidents_cli.app, name="incidents")
app.add_typer(mediation_cli.app, name="mediation")
app.add_typer(messaging_cli.app, name="messaging")
app.add_typer(index_cli.app, name="index")
app.add_typer(report_cli.app, name="report")

ImportKind = Literal["units"]


def alembic_config() -> object:
    from alembic.config import Config

    # The source checkout's alembic.ini (editable install), else one in the working directory.
    ini = Path(__file__).resolve().parents[3] / "alembic.ini"
    if not ini.exists():
        ini = Path.cwd() / "alembic.ini"
    if not ini.exists():
        console.print("[red]alembic.ini not found next to the source tree[/red]")
        raise typer.Exit(2)
    cfg = Config(str(ini))
    cfg.set_main_option("sqlalchemy.url", get_settings().resolved_database_url())
    return cfg


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (creates the SQLite file under ./var/ when needed)."""
    from alembic import command

    settings = get_settings()
    if settings.is_sqlite:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(), revision)  # type: ignore[arg-type]
    console.print(f"[green]database at {revision}[/green]")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    reload: bool = False,
) -> None:
    """Run the web server (uvicorn)."""
    import uvicorn

    uvicorn.run(
        "eqian.web.main:app",
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        log_level=get_settings().log_level.lower(),
        proxy_headers=True,
        # Per-message deflate keeps a zlib context per socket (hundreds of KiB each at 20,000
        # connected units) and compresses every frame once per recipient; instructions are short.
        ws_per_message_deflate=False,
    )


@demo_app.command("seed")
def demo_seed(
    scale: Annotated[
        str, typer.Option(help="town (织里, ~1,800 units) or city (湖州, ~20,000 units)")
    ] = "town",
    seed: int = 365,
    units: Annotated[int | None, typer.Option(help="override the number of units")] = None,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="do nothing when data exists")] = False,
    today: Annotated[
        datetime.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="the day the data runs up to")
    ] = None,
) -> None:
    """Create a synthetic, deterministic Zhili district and one demo account per role."""
    from eqian.demo.generator import is_seeded, seed_demo

    if scale not in ("town", "city"):
        console.print("[red]--scale must be town or city[/red]")
        raise typer.Exit(2)
    settings = get_settings()

    async def run() -> None:
        engine = make_engine(settings.resolved_database_url())
        factory = make_sessionmaker(engine)
        try:
            async with factory() as session:
                if await is_seeded(session):
                    if if_empty:
                        console.print("演示数据已存在，跳过 / demo data already present, skipped")
                        return
                    console.print("[red]database already has data; seed an empty database[/red]")
                    raise typer.Exit(1)
            with Progress(
                TextColumn("生成演示辖区 / seeding"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("seed", total=None)

                def tick(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                report = await seed_demo(
                    factory,
                    scale="city" if scale == "city" else "town",
                    seed=seed,
                    password=settings.demo_password,
                    units=units,
                    progress=tick,
                    today=today.date() if today else None,
                )
            # Run the checks once, so the demo opens with its alerts instead of an empty list.
            from eqian.core.db import utcnow
            from eqian.environment.checks import run_checks

            async with factory() as session:
                checks = await run_checks(session, now=utcnow())
                await session.commit()
        finally:
            await engine.dispose()
        console.print(
            f"[green]{report.stations} 个派出所, {report.service_points} 个自治服务点, "
            f"{report.units} 家单位, {report.contacts} 名联系人; 铝业 {report.smelters} 家, "
            f"台账 {report.ledger_entries} 条, 生态警情 {report.eco_incidents} 起, "
            f"巡查 {report.eco_patrols} 次, 新预警 {checks.created} 条[/green]"
        )
        if report.extras:
            console.print("[green]" + ", ".join(f"{k} {v}" for k, v in report.extras.items()) + "[/green]")
        if report.extras:
            console.print("[green]" + ", ".join(f"{k} {v}" for k, v in report.extras.items()) + "[/green]")
        table = Table(title="演示账号 / demo accounts (password: EQIAN_DEMO_PASSWORD)")
        table.add_column("username")
        table.add_column("role")
        table.add_column("scope")
        for username, role, scope_text in report.users:
            table.add_row(username, role, scope_text)
        console.print(table)

    asyncio.run(run())


@app.command("import")
def import_cmd(
    kind: Annotated[str, typer.Argument(help="units | ledger | incidents")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    as_user: Annotated[str, typer.Option("--as", help="username whose jurisdiction applies")] = "",
    unit: Annotated[
        int | None, typer.Option(help="the smelter (unit id) a ledger workbook belongs to")
    ] = None,
    dry_run: bool = False,
) -> None:
    """Import a CSV or XLSX file; any bad row means nothing is imported."""
    from eqian.organizations import transfer

    if kind == "ledger":
        raise typer.Exit(_import_ledger(file, unit, as_user, dry_run))
    if kind == "incidents":
        raise typer.Exit(incidents_cli.import_incidents(file, as_user, dry_run))
    _require_kind(kind)

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            try:
                result = await transfer.import_units(session, actor, file, dry_run=dry_run)
            except transfer.ImportFailed as exc:
                console.print(f"[red]{exc.message}[/red]")
                for err in exc.errors:
                    console.print(f"  第 {err.line} 行 {err.field or ''}: {err.message} [{err.code}]")
                return 1
            except AppError as exc:
                console.print(f"[red]{exc.message}[/red]")
                return 1
        prefix = "试运行，未写入 / dry run, nothing written: would " if dry_run else ""
        console.print(
            f"[green]{prefix}create {result.created}, update {result.updated}, "
            f"unchanged {result.unchanged}[/green]"
        )
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("export")
def export_cmd(
    kind: Annotated[str, typer.Argument(help="units")],
    file: Annotated[Path, typer.Argument(dir_okay=False)],
    as_user: Annotated[str, typer.Option("--as", help="username whose jurisdiction applies")] = "",
) -> None:
    """Export to CSV or XLSX (by the file's suffix)."""
    from eqian.organizations import transfer

    _require_kind(kind)

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            try:
                n = await transfer.export_units(session, actor, file)
            except AppError as exc:
                console.print(f"[red]{exc.message}[/red]")
                return 1
        console.print(f"[green]{n} rows written to {file}[/green]")
        return 0

    raise typer.Exit(asyncio.run(run()))


def _import_ledger(file: Path, unit: int | None, as_user: str, dry_run: bool) -> int:
    from eqian.environment.transfer import LedgerImportFailed, import_ledger

    if unit is None:
        console.print("[red]--unit is required for a ledger workbook[/red]")
        return 2

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            try:
                result = await import_ledger(session, actor, unit, file, dry_run=dry_run)
            except LedgerImportFailed as exc:
                console.print(f"[red]{exc.message}[/red]")
                for err in exc.errors:
                    console.print(
                        f"  {err.sheet} 第 {err.line} 行 {err.field or ''}: {err.message} [{err.code}]"
                    )
                return 1
            except AppError as exc:
                console.print(f"[red]{exc.message}[/red]")
                return 1
        prefix = "试运行，未写入 / dry run, nothing written: would import " if dry_run else "imported "
        console.print(
            f"[green]{prefix}{result.production} production reports, {result.stock_counts} stock counts, "
            f"{result.manifests} manifests[/green]"
        )
        return 0

    return asyncio.run(run())


def _require_kind(kind: str) -> None:
    if kind != "units":
        console.print(f"[red]unknown kind {kind!r}; supported: units[/red]")
        raise typer.Exit(2)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 when any row was edited, deleted or reordered."""
    from eqian.core import audit

    async def run() -> int:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                result = await audit.verify(session)
        finally:
            await engine.dispose()
        if result.ok:
            console.print(f"[green]audit chain intact: {result.rows} rows, head {result.head_hash}[/green]")
            return 0
        console.print(
            f"[red]audit chain BROKEN: {len(result.problems)} problem(s) in {result.rows} rows[/red]"
        )
        for p in result.problems[:100]:
            console.print(f"  seq {p.seq}: {p.reason}")
        return 1

    code = asyncio.run(run())
    raise typer.Exit(code)


@user_app.command("create")
def user_create(
    username: str,
    role: str,
    display_name: Annotated[str, typer.Option()] = "",
    station_id: int | None = None,
    unit_id: int | None = None,
    service_point_id: int | None = None,
    team_id: int | None = None,
    zone_id: int | None = None,
) -> None:
    """Create an account; the password is read from standard input or a prompt."""
    from eqian.core import auth
    from eqian.core.accounts import Role
    from eqian.core.errors import AppError
    from eqian.core.permissions import SYSTEM

    try:
        role_enum = Role(role)
    except ValueError:
        console.print(f"[red]role must be one of: {', '.join(r.value for r in Role)}[/red]")
        raise typer.Exit(2) from None
    password = (
        sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty()
        else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    )

    async def run() -> int:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                user = await auth.create_user(
                    session,
                    SYSTEM,
                    username=username,
                    display_name=display_name or username,
                    password=password,
                    role=role_enum,
                    station_id=station_id,
                    unit_id=unit_id,
                    service_point_id=service_point_id,
                    team_id=team_id,
                    zone_id=zone_id,
                )
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            return 1
        finally:
            await engine.dispose()
        console.print(f"[green]user {user.username} ({user.role}) created, id {user.id}[/green]")
        return 0

    raise typer.Exit(asyncio.run(run()))


@outbox_app.command("run")
def outbox_run(
    once: Annotated[bool, typer.Option(help="deliver what is due and exit")] = False,
    every: Annotated[float, typer.Option(help="seconds between rounds")] = 2.0,
) -> None:
    """Deliver outbox events to their handlers (each server worker also does this by itself)."""
    from eqian.core import outbox
    from eqian.web import handlers

    handlers.register_all()
    notifications_channels.configure(get_settings())

    async def run() -> None:
        engine = make_engine(get_settings().resolved_database_url())
        factory = make_sessionmaker(engine)
        try:
            if once:
                total = 0
                while (n := await outbox.dispatch_pending(factory)) > 0:
                    total += n
                console.print(f"[green]{total} events delivered[/green]")
            else:
                await outbox.run_dispatcher(factory, every)
        finally:
            await engine.dispose()

    asyncio.run(run())


@environment_app.command("check")
def environment_check() -> None:
    """Run the aluminium-ash checks now (mass balance, manifests, facilities, activity)."""
    from eqian.core.db import utcnow
    from eqian.environment.checks import run_checks

    async def run() -> None:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                report = await run_checks(session, now=utcnow())
                await session.commit()
        finally:
            await engine.dispose()
        console.print(
            f"[green]new {report.created}, resolved {report.resolved}, open {report.still_open}[/green] "
            + ", ".join(f"{k} {v}" for k, v in sorted(report.by_kind.items()))
        )

    asyncio.run(run())


jobs_app = typer.Typer(help="定时任务 / periodic jobs", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("run")
def jobs_run(once: Annotated[bool, typer.Option(help="run every job now and exit")] = True) -> None:
    """Run the periodic jobs (each server worker also runs them by itself)."""
    from eqian.core import scheduler
    from eqian.web import handlers

    jobs = handlers.periodic_jobs()

    async def run() -> None:
        engine = make_engine(get_settings().resolved_database_url())
        factory = make_sessionmaker(engine)
        try:
            if once:
                done = await scheduler.run_once(factory, jobs)
                console.print(
                    "[green]" + (", ".join(f"{k} {v}" for k, v in done.items()) or "no jobs") + "[/green]"
                )
            else:
                await scheduler.run_forever(factory, jobs)
        finally:
            await engine.dispose()

    asyncio.run(run())


hazards_app = typer.Typer(help="安全隐患 / hazards", no_args_is_help=True)
app.add_typer(hazards_app, name="hazards")


@hazards_app.command("escalate")
def hazards_escalate() -> None:
    """Escalate hazards past their rectification deadline (idempotent; also run hourly by each worker)."""
    from eqian.core.db import utcnow
    from eqian.hazards.jobs import escalate_overdue

    async def run() -> None:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                n = await escalate_overdue(session, now=utcnow())
            console.print(f"[green]escalated {n}[/green]")
        finally:
            await engine.dispose()

    asyncio.run(run())


@app.command("backup")
def backup_cmd(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write the backup")],
    drill: Annotated[
        bool, typer.Option("--drill", help="also restore into a scratch database and compare every table")
    ] = False,
) -> None:
    """Back up the database (SQLite online copy, or pg_dump in custom format)."""
    from eqian.core import backup

    url = get_settings().resolved_database_url()
    try:
        started = time.perf_counter()
        backup.backup(url, file)
        console.print(f"[green]backup written to {file} in {time.perf_counter() - started:.1f} s[/green]")
        if drill:
            result = asyncio.run(backup.drill(url))
    except backup.BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if drill:
        console.print(
            f"drill: {result.tables} tables, {result.rows} rows; backup {result.backup_seconds:.1f} s, "
            f"restore {result.restore_seconds:.1f} s, compare {result.compare_seconds:.1f} s; "
            f"{len(result.differences)} differences"
        )
        for problem in result.differences:
            console.print(f"  [red]{problem}[/red]")
        raise typer.Exit(1 if result.differences else 0)


@app.command("restore")
def restore_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    force: Annotated[bool, typer.Option("--force", help="restore over a database that holds tables")] = False,
) -> None:
    """Restore a backup written by `eqian backup` into the configured database."""
    from eqian.core import backup

    url = get_settings().resolved_database_url()
    try:
        started = time.perf_counter()
        asyncio.run(backup.restore(url, file, force=force))
    except backup.BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"[green]restored {file} in {time.perf_counter() - started:.1f} s[/green]")
