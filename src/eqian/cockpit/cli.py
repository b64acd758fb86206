"""The `eqian` subcommands of cockpit."""

from __future__ import annotations

import typer

app = typer.Typer(help="报表 / reports", no_args_is_help=True)
