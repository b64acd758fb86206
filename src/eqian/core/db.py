"""Database plumbing: declarative base, engines for SQLite and PostgreSQL, sessions."""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal, cast

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    SQLColumnExpression,
    Table,
    any_,
    bindparam,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for writes that go around the ORM's unit of work and bulk paths.

    Those paths cost tens of microseconds per row, and the bulk insert starts a new statement
    wherever a nullable column is None in one row and set in the next (2,000 units became ~900
    statements); a Core ``insert`` with a list of rows is one multi-row statement (executemany)."""
    return cast(Table, model.__table__)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _configure_sqlite(engine: AsyncEngine, begin: str) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql(f"BEGIN {begin}")


def make_engine(
    url: str, *, sqlite_begin: Literal["IMMEDIATE", "DEFERRED"] = "IMMEDIATE", pool_size: int = 10
) -> AsyncEngine:
    """An engine for ``url``.

    On SQLite, ``sqlite_begin`` picks how transactions start. IMMEDIATE takes the write lock up
    front, so read-then-write sequences (the audit hash chain, login failure counters) queue
    behind each other instead of failing with SQLITE_BUSY when they race; it is for sessions
    that write. DEFERRED keeps WAL's readers-never-block-writers for read-only sessions.
    """
    kwargs: dict[str, Any] = {"json_serializer": json_text}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        # Connections beyond ``pool_size`` are closed when returned: a worker serving more
        # concurrent requests than that opens and closes connections all the time (a backend
        # process and an SSL negotiation each), so busy workers set EQIAN_DB_POOL_SIZE higher.
        kwargs.update(pool_size=pool_size, max_overflow=20)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _configure_sqlite(engine, sqlite_begin)
    else:
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


# Types orjson would write on its own terms (datetimes, dataclasses, subclasses of str, int, dict and
# list) it hands back instead, and the standard library decides, as it did before.
_ORJSON_DEFERS = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def json_text(value: Any) -> str:
    """The text of a JSON column's value: orjson, seven times faster than the standard library,
    which was a third of writing a city's safety-index month (20,000 rows, bench/index.py). Values
    it refuses or would write otherwise (integers beyond 64 bits, keys that are not strings, named
    tuples, the types above) go to the standard library as before, so a column reads back the same
    values either way; only the text differs (no spaces, Chinese not escaped). One exception: a NaN
    is written as null, where the standard library wrote NaN, which PostgreSQL refused."""
    try:
        return orjson.dumps(value, option=_ORJSON_DEFERS).decode()
    except TypeError:
        return json.dumps(value)


def _replace_if_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout, a terminated
    backend) is replaced at checkout, before a request uses it.

    This replaces ``pool_pre_ping``, which on asyncpg costs three round trips at every checkout
    (BEGIN, an empty query, ROLLBACK: a quarter of a worker's time under intake load). asyncpg
    sees the server's FIN on an idle connection in the pool, as its protocol keeps reading, so
    asking the driver is enough for every case but a silent network partition, which the first
    statement then meets as an error and the pool is invalidated.
    """
    if dbapi_conn.driver_connection.is_closed():
        raise DisconnectionError("connection closed by the server")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


def among(column: SQLColumnExpression[int], values: Iterable[int], dialect: str) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL one array parameter (``= ANY(:ids)``) instead of one
    bound parameter per value, which SQLAlchemy renders and the driver encodes one by one."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(Integer)))
    return column.in_(list(values))


def dialect_insert(session: AsyncSession) -> Any:
    """``insert`` of this session's dialect, for ``on_conflict_do_nothing`` (PostgreSQL and SQLite
    spell it alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


BULK_ROWS = 1000  # rows written by one import after which the planner's statistics are refreshed


async def refresh_statistics(session: AsyncSession, tables: Iterable[str], *, rows: int) -> None:
    """After an import wrote ``rows`` rows: ``ANALYZE`` the tables on PostgreSQL when that is many.

    Autovacuum gets there within a minute or so; until then a table filled by one import has no (or
    old) statistics and the planner may choose nested loops over it: an instruction's audience at
    2,000 freshly imported units took 0.2–0.4 s that way (messaging.service.member_clause). SQLite
    keeps no statistics unless asked and plans by its heuristics; nothing to refresh there."""
    if rows < BULK_ROWS or session.get_bind().dialect.name != "postgresql":
        return
    quote = session.get_bind().dialect.identifier_preparer.quote
    for table in tables:
        await session.execute(text(f"ANALYZE {quote(table)}"))
    await session.commit()


_UNSET = object()


async def bulk_insert(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], chunk: int = 2000
) -> None:
    """Insert many rows with the same keys in the session's transaction: ``COPY`` on PostgreSQL,
    chunked ``executemany`` elsewhere.

    Chunked multi-row INSERTs through SQLAlchemy and asyncpg took about 2 s for the safety index's
    20,000 rows of a city (statements of 2,000 rows, every value bound one by one); binary ``COPY``
    about 1.2 s then, 0.25 s since the rows are figures and the table lighter (stop 21), most of it
    PostgreSQL's own insert. Only columns whose type processes values are touched. Each value still goes
    through its column type's bind processing (JSON serialised as SQLAlchemy would, UTC datetimes
    checked), so what is stored is what an INSERT would have stored."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        for n in range(0, len(rows), chunk):
            await session.execute(table.insert(), rows[n : n + chunk])
        return
    columns = list(rows[0])
    processors = [
        (i, p)
        for i, c in enumerate(columns)
        if (p := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    values = operator.itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    try:
        # Most columns bind as they are (asyncpg encodes them): only the others are touched.
        records = [values(row) for row in rows]
        if processors:
            # A value shared by every row (the run's timestamp, an empty list) is processed once:
            # the same object gives the same text. A third of a month's JSON and dates (bench/index.py).
            last: list[tuple[Any, Any]] = [(_UNSET, None)] * len(processors)
            for n, record in enumerate(records):
                record = list(record)
                for k, (i, p) in enumerate(processors):
                    value = record[i]
                    seen, done = last[k]
                    if value is not seen:
                        done = p(value)
                        last[k] = (value, done)
                    record[i] = done
                records[n] = tuple(record)
    except (TypeError, ValueError) as exc:  # as SQLAlchemy reports a value its type refuses
        raise StatementError(str(exc), f"COPY {table.name}", None, exc) from exc
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = cast(Any, raw.driver_connection)
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the server transaction at its first statement: a COPY
        # sent before any would commit on its own, and a rollback would not take it back.
        await connection.execute(text("SELECT 1"))
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=columns, schema_name=table.schema
        )
    except asyncpg.IntegrityConstraintViolationError as exc:  # as an INSERT's would be reported
        raise IntegrityError(f"COPY {table.name}", None, exc) from exc
    except asyncpg.PostgresError as exc:
        raise DBAPIError(f"COPY {table.name}", None, exc) from exc
