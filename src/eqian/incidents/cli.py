"""The `eqian` subcommands of incidents."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="警情 / incidents", no_args_is_help=True)


def import_incidents(file: Path, as_user: str, dry_run: bool) -> int:
    """`eqian import incidents FILE`: a 110 dispatch export (CSV/XLSX); returns the exit code."""
    raise NotImplementedError
