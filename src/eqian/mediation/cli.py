"""The `eqian` subcommands of mediation."""

from __future__ import annotations

import typer

app = typer.Typer(help="矛盾纠纷调解 / mediation", no_args_is_help=True)
