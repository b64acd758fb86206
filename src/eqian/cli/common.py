"""What every ``eqian`` subcommand shares: the console and acting as a principal."""

from __future__ import annotations

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.config import get_settings
from eqian.core.db import make_engine, make_sessionmaker
from eqian.core.permissions import Principal

console = Console()


class actor_session:
    """A database session and the principal the command acts as (the system, or ``--as`` a user)."""

    def __init__(self, username: str) -> None:
        self.username = username

    async def __aenter__(self) -> tuple[AsyncSession, Principal]:
        from sqlalchemy import select

        from eqian.core.accounts import User
        from eqian.core.permissions import SYSTEM

        self.engine = make_engine(get_settings().resolved_database_url())
        self.session = make_sessionmaker(self.engine)()
        actor = SYSTEM
        if self.username:
            user = await self.session.scalar(select(User).where(User.username == self.username))
            if user is None:
                # __aexit__ does not run when __aenter__ raises: close here.
                await self.__aexit__()
                console.print(f"[red]no such user: {self.username}[/red]")
                raise typer.Exit(2)
            actor = Principal.of(user, ip="cli")
        return self.session, actor

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await self.engine.dispose()
