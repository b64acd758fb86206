"""Rows as column arrays for PostgreSQL's ``unnest``: many rows, several tables, one statement.

Core's multi-row insert binds every value of every row as a parameter of its own, and each table is
a statement and a round trip of its own. ``insert_sql`` instead writes ``INSERT INTO t (...) SELECT
... FROM unnest(:a, :b, ...)`` with one array parameter per column, so a batch of rows costs the
same few parameters whatever its size, and several such inserts (and an ``UPDATE ... FROM unnest``)
can go to the server together as the data-modifying parts of one ``WITH`` statement — which
PostgreSQL runs as one statement: all of it or none of it, foreign keys between its parts checked
at its end. Used by the incident intake's batch (``incidents.intake``).

A row is completed as Core's insert would complete it (``complete``): a column it lacks takes the
column's Python-side default, else NULL (a primary key it lacks is left to its sequence). Values go
through their column type's bind processing, so what is stored is what an INSERT would have stored
(JSON is sent as text and cast back: asyncpg has no array type for SQLAlchemy's JSON encoding).
The statement text and each column's processing are worked out once per table and set of columns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Table, TextClause, text
from sqlalchemy.engine import Dialect


@functools.cache
def _defaults(table: Table) -> tuple[tuple[str, Any, bool], ...]:
    """(column, default, callable?) for every column an insert must fill when a row lacks it."""
    out = []
    for column in table.columns:
        default = column.default
        if column.server_default is not None or (column.primary_key and default is None):
            continue  # the server fills it
        if default is None:
            out.append((column.key, None, False))
        elif default.is_scalar:
            out.append((column.key, default.arg, False))  # type: ignore[attr-defined]
        elif default.is_callable:
            out.append((column.key, default.arg, True))  # type: ignore[attr-defined]
        else:  # a SQL expression or a sequence: not what these tables use
            raise ValueError(f"{table.name}.{column.key}: default {default!r} is not supported here")
    return tuple(out)


def complete(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every column of ``table``: its own value, else the column's default, else None."""
    out = dict(row)
    for key, default, call in _defaults(table):
        if key not in out:
            out[key] = default(None) if call else default
    return out


Processor = Callable[[Any], Any] | None


@functools.cache
def _shape(
    table: Table, keys: tuple[str, ...], dialect: Dialect, name: str
) -> tuple[str, tuple[Processor, ...]]:
    quote = dialect.identifier_preparer.quote
    arrays, selected, processors = [], [], []
    for n, key in enumerate(keys):
        column = table.c[key]
        processors.append(column.type.dialect_impl(dialect).bind_processor(dialect))
        sql_type = column.type.compile(dialect=dialect)
        if isinstance(column.type, JSON):
            arrays.append(f"CAST(:{name}_{n} AS TEXT[])")
            selected.append(f"CAST(c{n} AS {sql_type})")
        else:
            arrays.append(f"CAST(:{name}_{n} AS {sql_type}[])")
            selected.append(f"c{n}")
    aliases = ", ".join(f"c{n}" for n in range(len(keys)))
    # Identifiers from the table's metadata, every value a bound parameter: nothing from a request.
    columns = ", ".join(quote(k) for k in keys)
    sql = f"INSERT INTO {quote(table.name)} ({columns}) SELECT {', '.join(selected)} "
    sql += f"FROM unnest({', '.join(arrays)}) AS {name}({aliases})"
    return sql, tuple(processors)


def insert_sql(
    table: Table, rows: list[dict[str, Any]], dialect: Dialect, name: str, *, completed: bool = False
) -> tuple[str, dict[str, Any]]:
    """``INSERT INTO <table> (...) SELECT ... FROM unnest(...)`` writing ``rows`` (completed here
    unless the caller says they are, all with the same columns), and its parameters, named
    ``<name>_<n>`` so that parts can share a statement."""
    if not completed:
        rows = [complete(table, row) for row in rows]
    keys = tuple(rows[0])
    sql, processors = _shape(table, keys, dialect, name)
    params: dict[str, Any] = {}
    for n, (key, process) in enumerate(zip(keys, processors, strict=True)):
        values = [row[key] for row in rows]
        params[f"{name}_{n}"] = values if process is None else [process(v) for v in values]
    return sql, params


@functools.lru_cache(maxsize=64)
def statement(sql: str) -> TextClause:
    """``text(sql)``, parsed once: a batch's statement text repeats, and parsing it is not free."""
    return text(sql)
