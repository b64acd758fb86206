"""The `eqian` subcommands of safety_index."""

from __future__ import annotations

import typer

app = typer.Typer(help="企业平安指数 / safety index", no_args_is_help=True)
