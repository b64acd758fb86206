"""The `eqian report` subcommands: a station's monthly report, and rebuilding the rollups."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from eqian.core.config import get_settings
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.errors import AppError
from eqian.core.months import parse as parse_month

app = typer.Typer(help="报表 / reports", no_args_is_help=True)
console = Console()


@app.command("monthly")
def monthly(
    station: Annotated[str, typer.Option("--station", help="派出所名称或代码 / station name or code")],
    month: Annotated[str, typer.Option("--month", help="YYYY-MM (Asia/Shanghai)")],
    out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("reports"),
    pdf: Annotated[
        bool, typer.Option("--pdf/--no-pdf", help="also print a PDF with headless Chromium")
    ] = False,
) -> None:
    """Write the station's monthly report: an XLSX workbook and a printable HTML page (and a PDF)."""
    from eqian.cockpit import report

    async def run() -> int:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                data = await report.gather(session, station, month)
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            return 1
        finally:
            await engine.dispose()
        stem = f"{data.station}-{data.month}"
        xlsx = report.write_xlsx(data, out / f"{stem}.xlsx")
        page = report.write_html(data, out / f"{stem}.html")
        console.print(f"[green]{xlsx}[/green]\n[green]{page}[/green]")
        if pdf:
            browser = report.chromium()
            if browser is None:
                console.print(
                    "[yellow]未找到 Chromium，跳过 PDF / no Chromium: print the HTML instead[/yellow]"
                )
                return 0
            console.print(f"[green]{report.write_pdf(page, out / f'{stem}.pdf', browser)}[/green]")
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("rollup")
def rollup(
    first: Annotated[str, typer.Option("--from", help="first month YYYY-MM")],
    last: Annotated[str | None, typer.Option("--to", help="last month YYYY-MM (default: --from)")] = None,
) -> None:
    """Recompute the cockpit's rollups for a range of months from the raw rows (idempotent)."""
    from eqian.cockpit import rollups

    async def run() -> int:
        try:
            parse_month(first)
            parse_month(last or first)
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        engine = make_engine(get_settings().resolved_database_url())
        try:
            async with make_sessionmaker(engine)() as session:
                done = await rollups.rebuild(session, first, last or first)
        finally:
            await engine.dispose()
        for month, rows in done.items():
            console.print(f"{month}: {rows} rows")
        return 0

    raise typer.Exit(asyncio.run(run()))
