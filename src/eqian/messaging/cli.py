"""The `eqian` subcommands of messaging."""

from __future__ import annotations

import typer

app = typer.Typer(help="民芯对讲 / messaging", no_args_is_help=True)
