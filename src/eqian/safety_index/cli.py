"""The `eqian index` subcommands: compute a month, backtest a range of months."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eqian.core.config import get_settings
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.errors import AppError
from eqian.core.pacing import BATCH_PACE

app = typer.Typer(help="企业平安指数 / safety index", no_args_is_help=True)
console = Console()
# A month's index is a batch job beside a live service: on a shared host its Python side gives the
# CPU to the server workers first (measured: bench/intake.py, intake p99 while the index runs).
BATCH_NICE = 10
STAGES = {"facts": "汇总各业务数据 / facts", "score": "计算得分 / scoring", "write": "写入结果 / writing"}


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command("compute")
def compute(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM (Asia/Shanghai)")],
    replace: Annotated[
        bool, typer.Option("--replace", help="recompute a month computed with another model version")
    ] = False,
    pace: Annotated[
        float,
        typer.Option(
            "--pace", min=0, max=10, help="seconds of pause per second of work while others use the database"
        ),
    ] = BATCH_PACE,
    nice: Annotated[
        int,
        typer.Option("--nice", min=0, max=19, help="lower its CPU priority by N (0: full)"),
    ] = BATCH_NICE,
) -> None:
    """Compute one month's index for every active unit (re-running the month replaces it)."""
    if nice:
        os.nice(nice)
    from eqian.core.permissions import SYSTEM
    from eqian.safety_index.service import compute_month

    async def run() -> int:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            with _progress() as progress:
                tasks: dict[str, object] = {}

                def tick(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = progress.add_task(STAGES.get(stage, stage), total=total)
                    progress.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

                async with make_sessionmaker(engine)() as session:
                    result = await compute_month(
                        session, SYSTEM, month, replace=replace, progress=tick, pace=pace
                    )
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            return 1
        finally:
            await engine.dispose()
        replaced = (
            f"（替换了模型 {result.replaced_version}）"
            if result.replaced_version not in (None, result.config_version)
            else ""
        )
        # Why a run took longer than the last: it gave way to the live service for this long.
        paused = f"（其中为在线业务让行 {result.paused:.2f} s）" if result.paused else ""
        console.print(
            f"[green]{result.month}: {result.units} 家单位，模型 {result.config_version}{replaced}，"
            f"用时 {result.seconds:.2f} s{paused}[/green]"
        )
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("backtest")
def backtest(
    first: Annotated[str, typer.Option("--from", help="first month YYYY-MM")],
    last: Annotated[
        str, typer.Option("--to", help="last month YYYY-MM (its following month must have data)")
    ],
) -> None:
    """AUC and top-decile capture of each month's index for next month's incidents, vs. last month's count."""
    from eqian.safety_index.backtest import run_backtest

    async def run() -> int:
        engine = make_engine(get_settings().resolved_database_url())
        try:
            with _progress() as progress:
                task = progress.add_task("回测 / backtest", total=None)

                def tick(stage: str, done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                async with make_sessionmaker(engine)() as session:
                    result = await run_backtest(session, first, last, progress=tick)
        except AppError as exc:
            console.print(f"[red]{exc.message}[/red]")
            return 1
        finally:
            await engine.dispose()

        def f(x: float | None) -> str:
            return "—" if x is None else f"{x:.3f}"

        table = Table(
            title=f"平安指数回测 / backtest (model {result.config_version}; target: ≥1 incident next month)"
        )
        for col in (
            "month",
            "units",
            "with incident",
            "AUC index",
            "AUC naive",
            "top-10% index",
            "top-10% naive",
        ):
            table.add_column(col, justify="right")
        for m in result.months:
            table.add_row(
                m.month,
                str(m.units),
                str(m.positives),
                f(m.auc),
                f(m.baseline_auc),
                f(m.top_decile),
                f(m.baseline_top_decile),
            )
        s = result.summary()
        table.add_row(
            "mean", "", "", f(s["auc"]), f(s["baseline_auc"]), f(s["top_decile"]), f(s["baseline_top_decile"])
        )
        console.print(table)
        print(json.dumps(s, ensure_ascii=False))
        return 0

    raise typer.Exit(asyncio.run(run()))
