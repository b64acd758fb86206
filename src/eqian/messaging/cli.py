"""The `eqian messaging` subcommands: registry channels, escalation, and an instruction's board."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from eqian.cli.common import actor_session, console
from eqian.core.db import utcnow
from eqian.core.errors import AppError
from eqian.messaging import service

app = typer.Typer(help="民芯对讲 / messaging", no_args_is_help=True)


@app.command("channels")
def channels_cmd(
    as_user: Annotated[str, typer.Option("--as", help="list as this user (default: system)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Create the missing station / category / service-point channels, then list the channels."""

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            added = await service.ensure_channels(session)
            items, total = await service.list_channels(
                session, actor, kind=None, station_id=None, limit=500, offset=0
            )
        if as_json:
            print(json.dumps([c.model_dump(mode="json") for c in items], ensure_ascii=False))
            return 0
        table = Table("id", "类型", "名称", "最新序号")
        for c in items:
            table.add_row(str(c.id), c.kind, c.name, str(c.last_seq))
        console.print(table)
        console.print(f"{total} 个频道（新建 {added} 个）")
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("escalate")
def escalate_cmd() -> None:
    """Escalate the instructions past their deadline now (the server does it every minute)."""

    async def run() -> int:
        async with actor_session("") as (session, _actor):
            done = await service.escalate_overdue(session, now=utcnow())
        console.print(f"{done} 条指令已督办")
        return 0

    raise typer.Exit(asyncio.run(run()))


@app.command("board")
def board_cmd(
    instruction_id: int,
    status: Annotated[str | None, typer.Option(help="pending | acknowledged | overdue | escalated")] = None,
    as_user: Annotated[str, typer.Option("--as", help="act as this user (default: system)")] = "",
) -> None:
    """An instruction's acknowledgement board: 已确认 N/M and the units by status."""

    async def run() -> int:
        async with actor_session(as_user) as (session, actor):
            try:
                instruction = await service.get_instruction(session, actor, instruction_id)
                rows, _ = await service.list_receipts(
                    session, actor, instruction_id, status=status, limit=500, offset=0
                )
            except AppError as exc:
                console.print(f"[red]{exc.message}[/red]")
                return 1
        p = instruction.progress
        title = f"[bold]{instruction.title}[/bold]"
        console.print(f"{title}  已确认 {p.acknowledged}/{p.total}，逾期 {p.overdue}")
        table = Table("单位", "状态", "确认时间", "回复")
        for r in rows:
            when = r.acknowledged_at.isoformat(timespec="seconds") if r.acknowledged_at else "—"
            table.add_row(r.unit_name, r.status, when, r.ack_text or "")
        console.print(table)
        return 0

    raise typer.Exit(asyncio.run(run()))
