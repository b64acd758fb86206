"""The `eqian mediation` subcommands: statistics and the teams' current load."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from eqian.cli.common import actor_session, console
from eqian.mediation import service

app = typer.Typer(help="矛盾纠纷调解 / mediation", no_args_is_help=True)


@app.command("stats")
def stats_cmd(
    group: Annotated[str, typer.Option(help="team | station | month | dispute_type")] = "team",
    since: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD (inclusive)")] = None,
    until: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (inclusive)")] = None,
    as_user: Annotated[str, typer.Option("--as", help="act as this user (default: system)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """调解统计: mediated, successful, success rate and amount recovered (e.g. 1,320 / 1,297 / 98.3 %)."""
    if group not in ("team", "station", "month", "dispute_type"):
        console.print("[red]--group must be team, station, month or dispute_type[/red]")
        raise typer.Exit(2)
    try:
        lo = dt.date.fromisoformat(since) if since else None
        hi = dt.date.fromisoformat(until) if until else None
    except ValueError as exc:
        console.print(f"[red]bad date: {exc}[/red]")
        raise typer.Exit(2) from exc

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            rows, total = await service.stats(session, actor, group, since=lo, until=hi)
        if as_json:
            print(json.dumps([r.model_dump(mode="json") for r in [*rows, total]], ensure_ascii=False))
            return 0
        table = Table("key", "名称", "受理", "已调结", "成功", "不成", "移交", "成功率", "挽回金额(元)")
        for r in [*rows, total]:
            rate = f"{r.success_rate} %" if r.success_rate is not None else "—"
            table.add_row(
                r.key, r.label, f"{r.opened:,}", f"{r.mediated:,}", f"{r.success:,}", f"{r.failed:,}",
                f"{r.referred:,}", rate, f"{r.amount_recovered:,.2f}",
            )  # fmt: skip
        console.print(table)
        console.print(
            f"调解 {total.mediated:,} 起，成功 {total.success:,} 起，成功率 "
            f"{total.success_rate if total.success_rate is not None else '—'} %"
        )
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("teams")
def teams_cmd(as_user: Annotated[str, typer.Option("--as")] = "") -> None:
    """Teams with specialties, members and open cases."""

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            teams = await service.list_teams(session, actor)
        table = Table("id", "名称", "类型", "专长", "成员", "在办")
        for t in teams:
            table.add_row(
                str(t.id),
                t.name,
                t.kind,
                ",".join(t.specialties) or "*",
                str(len(t.members)),
                str(t.open_cases),
            )
        console.print(table)
        return 0

    raise typer.Exit(asyncio.run(run()))
