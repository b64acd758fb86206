"""The `eqian` subcommands of incidents, and `eqian import incidents FILE`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="警情 / incidents", no_args_is_help=True)
ROUTE_ZH = {"dispatch": "派警处置", "self_governance": "企业自治", "mediation": "调解"}


def import_incidents(file: Path, as_user: str, dry_run: bool) -> int:
    """`eqian import incidents FILE`: a 110 dispatch export (CSV/XLSX); returns the exit code."""
    from eqian.cli.common import actor_session, console
    from eqian.core.errors import AppError
    from eqian.incidents import transfer

    async def run() -> int:
        started = time.perf_counter()
        async with actor_session(as_user) as (session, actor):
            try:
                result = await transfer.import_file(session, actor, file, dry_run=dry_run)
            except transfer.ImportFailed as exc:
                console.print(f"[red]{exc.message}[/red]")
                for err in exc.errors[:200]:
                    label = transfer.LABELS.get(err.field or "", err.field or "")
                    console.print(f"  第 {err.line} 行 {label}: {err.message} [{err.code}]")
                if len(exc.errors) > 200:
                    console.print(f"  … 另有 {len(exc.errors) - 200} 处错误")
                return 1
            except AppError as exc:
                console.print(f"[red]{exc.message}[/red]")
                return 1
        seconds = time.perf_counter() - started
        prefix = "试运行，未写入 / dry run, nothing written: would " if dry_run else ""
        routes = ", ".join(f"{ROUTE_ZH.get(k, k)} {v}" for k, v in sorted(result.by_route.items()))
        console.print(
            f"[green]{prefix}create {result.created}, skip {result.skipped} (already imported), "
            f"linked to a unit {result.linked} of {result.rows} rows in {seconds:.1f} s[/green]"
        )
        if routes:
            console.print(f"[green]分流 / routes: {routes}[/green]")
        return 0

    return asyncio.run(run())


@app.command("suggest-rules")
def suggest_rules(
    limit: Annotated[int, typer.Option(help="show at most this many suggestions")] = 50,
) -> None:
    """Words worth adding to the lexicon, learnt from officers' corrections of the classifier."""
    from eqian.cli.common import actor_session, console
    from eqian.incidents import classifier, service

    async def run() -> int:
        async with actor_session("") as (session, _):
            pairs = await service.override_pairs(session)
        suggestions = classifier.suggest_rules(pairs)
        console.print(f"{len(pairs)} corrections, {len(suggestions)} suggestions")
        for s in suggestions[:limit]:
            label = classifier.CATEGORIES.get(s.category, s.category)
            console.print(f"  {s.word}\t→ {s.category} ({label})\tsupport {s.support}")
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("flag-overdue")
def flag_overdue() -> None:
    """Flag incidents past their SLA now (the server does this every five minutes)."""
    from eqian.cli.common import actor_session, console
    from eqian.core.db import utcnow
    from eqian.incidents.jobs import flag_overdue as run_flag

    async def run() -> int:
        async with actor_session("") as (session, _):
            n = await run_flag(session, now=utcnow())
        console.print(f"[green]{n} incidents flagged overdue[/green]")
        return 0

    raise typer.Exit(asyncio.run(run()))
