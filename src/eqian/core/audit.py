"""Append-only, hash-chained audit log.

Each row carries the hash of the row before it and a gap-free sequence number, so editing,
deleting or reordering any row breaks the chain at that point. The application only ever
inserts here; ``verify`` walks the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Connection, String, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, table_of, utcnow
from eqian.core.permissions import Principal

GENESIS_HASH = "0" * 64
PG_CHAIN_LOCK = 7_365_001  # advisory lock key serialising chain appends on PostgreSQL


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    actor_id: Mapped[int | None] = mapped_column()
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48), index=True)
    entity: Mapped[str] = mapped_column(String(48))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# The database itself refuses edits and deletions of audit rows, so not even a bug or an injected
# statement in the application can rewrite history; migrations 0003 and 0005 install the same
# triggers. A deleted row in the middle would show as a gap in ``seq``, but the newest rows deleted
# leave none, so DELETE is refused on SQLite too. TRUNCATE, DROP and dropping the trigger stay with
# whoever owns the database (file).
PG_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP "
    "USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
)
SQLITE_TRIGGERS = {"audit_log_no_update": "UPDATE", "audit_log_no_delete": "DELETE"}  # name: refused
SQLITE_APPEND_ONLY = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {op} ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {op} refused'); END"
    for name, op in SQLITE_TRIGGERS.items()
)


# The chain's head for an appender on PostgreSQL, in one round trip: the chain's lock, then the last
# row. A function, because a statement reads from the snapshot it started with, before its own
# lock was granted (it would miss rows committed while it waited); each statement of a VOLATILE
# function takes a fresh one. Its argument is ignored: a statement passes what it must finish
# before taking the lock (``pg_append``; arguments are evaluated before the call). PL/pgSQL keeps
# its statements' plans from call to call (an SQL function plans them on every call: 55 µs of the
# server's CPU more per call, measured). Migration 0007 installs a frozen copy.
PG_HEAD_FUNCTION = (  # our constants only
    "CREATE OR REPLACE FUNCTION eqian_audit_head(after BIGINT) "  # noqa: S608
    "RETURNS TABLE (head_seq BIGINT, head_hash VARCHAR) LANGUAGE plpgsql VOLATILE AS $$ BEGIN "
    f"PERFORM pg_advisory_xact_lock({PG_CHAIN_LOCK}); "
    "RETURN QUERY (SELECT a.seq, a.hash FROM audit_log AS a ORDER BY a.seq DESC LIMIT 1) "
    f"UNION ALL SELECT CAST(0 AS BIGINT), CAST('{GENESIS_HASH}' AS VARCHAR) ORDER BY 1 DESC LIMIT 1; "
    "END $$"
)


def _database_side(_table: Any, connection: Connection, **_kw: Any) -> None:
    """The triggers that keep the table append-only, and on PostgreSQL ``eqian_audit_head``."""
    pg = (*PG_APPEND_ONLY, PG_HEAD_FUNCTION)
    statements = {"postgresql": pg, "sqlite": SQLITE_APPEND_ONLY}.get(connection.dialect.name, ())
    for statement in statements:
        connection.execute(text(statement))


event.listen(AuditLog.__table__, "after_create", _database_side)


_PAYLOAD_JSON: dict[str, Any] = {
    "ensure_ascii": False,
    "sort_keys": True,
    "separators": (",", ":"),
    "default": str,
}


def middle(
    *,
    ts: dt.datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    entity: str,
    entity_id: str | None,
    changes: dict[str, Any] | None,
    ip: str | None,
) -> str:
    """A row's hashed fields other than its place in the chain, as they appear in its payload."""
    fields = [ts.astimezone(dt.UTC).isoformat(), actor_id, actor_name, action, entity, entity_id, changes, ip]
    return json.dumps(fields, **_PAYLOAD_JSON)[1:-1]


def link(seq: int, middle: str, prev_hash: str) -> str:
    """A row's hash: SHA-256 of the JSON array ``[seq, ts, actor_id, actor_name, action, entity,
    entity_id, changes, ip, prev_hash]`` (keys sorted, no spaces, not ASCII-escaped). Built from its
    parts so that PostgreSQL can link a batch's rows itself (``pg_append``) and get the same text."""
    return hashlib.sha256(f'[{seq},{middle},"{prev_hash}"]'.encode()).hexdigest()


def _digest(*, seq: int, prev_hash: str, **fields: Any) -> str:
    return link(seq, middle(**fields), prev_hash)


def _row_digest(row: AuditLog) -> str:
    return _digest(
        seq=row.seq,
        ts=row.ts,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        changes=row.changes,
        ip=row.ip,
        prev_hash=row.prev_hash,
    )


def _jsonable(changes: dict[str, Any] | None) -> dict[str, Any] | None:
    # Round-trip through JSON now so the hash is computed over exactly what the database returns.
    if changes is None:
        return None
    loaded: dict[str, Any] = json.loads(json.dumps(changes, ensure_ascii=False, default=str))
    return loaded


@dataclass(frozen=True)
class Entry:
    """One action to append to the chain (``record_many`` appends several under one lock)."""

    actor_id: int | None
    actor_name: str
    action: str
    entity: str
    entity_id: str | int | None = None
    changes: dict[str, Any] | None = None
    ip: str | None = None


async def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    actor_name: str,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    changes: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Append one row inside the caller's transaction: it commits or rolls back with the change."""
    await record_many(session, [Entry(actor_id, actor_name, action, entity, entity_id, changes, ip)])


async def record_many(session: AsyncSession, entries: list[Entry]) -> None:
    """Append rows in the given order, inside the caller's transaction, taking the chain's lock
    once: a batch of intake requests is one step of the chain's serialisation, not one per row.

    Written as one multi-row insert on the table, not through the unit of work: nothing reads the
    new rows back in this session, and a flush of ORM objects cost more than the rest of it."""
    rows = chained(entries, await head(session))
    await session.execute(insert(table_of(AuditLog)), rows)


_HEAD = text("SELECT head_seq, head_hash FROM eqian_audit_head(0)")


async def head(session: AsyncSession) -> tuple[int, str]:
    """The chain's last (seq, hash), with the chain's lock held until the transaction ends (on
    SQLite the transaction's write lock serialises appenders)."""
    if session.get_bind().dialect.name == "postgresql":
        seq, hash_ = (await session.execute(_HEAD)).one()
        return int(seq), str(hash_)
    last = (
        await session.execute(select(AuditLog.seq, AuditLog.hash).order_by(AuditLog.seq.desc()).limit(1))
    ).first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


def chained(entries: list[Entry], after: tuple[int, str]) -> list[dict[str, Any]]:
    """The audit rows of ``entries``, in order, linked to the chain whose head is ``after``."""
    seq, prev_hash = after
    ts = utcnow()
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        row = {"seq": seq, **_fields(entry, ts), "prev_hash": prev_hash}
        row["hash"] = prev_hash = _digest(**row)
        rows.append(row)
    return rows


def _fields(entry: Entry, ts: dt.datetime) -> dict[str, Any]:
    """An entry's hashed fields other than its place in the chain (``middle``'s arguments), as stored."""
    return {
        "ts": ts,
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "entity": entry.entity,
        "entity_id": None if entry.entity_id is None else str(entry.entity_id),
        "changes": _jsonable(entry.changes),
        "ip": entry.ip,
    }


# Appending inside a larger statement on PostgreSQL (``pg_append``): the entries as arrays, linked
# one after another from the head by a recursive query with ``link``'s formula. The lock is taken
# where the statement reaches ``eqian_audit_head`` and held to the commit, as ``record_many``'s.
_PG_APPEND_CTES = (
    "audit_head AS (SELECT head_seq, head_hash FROM eqian_audit_head({after}))",
    "audit_entries AS (SELECT * FROM unnest(CAST(:au_mid AS TEXT[]), CAST(:au_ts AS TIMESTAMPTZ[]), "
    "CAST(:au_actor_id AS INTEGER[]), CAST(:au_actor_name AS TEXT[]), CAST(:au_action AS TEXT[]), "
    "CAST(:au_entity AS TEXT[]), CAST(:au_entity_id AS TEXT[]), CAST(:au_changes AS TEXT[]), "
    "CAST(:au_ip AS TEXT[])) WITH ORDINALITY AS e(mid, ts, actor_id, actor_name, action, entity, "
    "entity_id, changes, ip, n))",
    "audit_chain(n, seq, prev_hash, hash) AS ("
    "SELECT CAST(0 AS BIGINT), head_seq, CAST(NULL AS VARCHAR), head_hash FROM audit_head "
    "UNION ALL SELECT e.n, c.seq + 1, c.hash, CAST(encode(sha256(convert_to("
    "'[' || (c.seq + 1) || ',' || e.mid || ',\"' || c.hash || '\"]', 'UTF8')), 'hex') AS VARCHAR) "
    "FROM audit_chain AS c JOIN audit_entries AS e ON e.n = c.n + 1)",
)
_PG_APPEND_INSERT = (
    "INSERT INTO audit_log (seq, ts, actor_id, actor_name, action, entity, entity_id, changes, ip, "
    "prev_hash, hash) SELECT c.seq, e.ts, e.actor_id, e.actor_name, e.action, e.entity, e.entity_id, "
    "CAST(e.changes AS JSON), e.ip, c.prev_hash, c.hash "
    "FROM audit_chain AS c JOIN audit_entries AS e ON e.n = c.n RETURNING seq"
)


def pg_append(
    entries: list[Entry], after: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], str, dict[str, Any]]:
    """For one PostgreSQL statement that appends ``entries`` (in order) along with other work:
    its common table expressions (the statement must begin ``WITH RECURSIVE``), its final INSERT
    (returning each new row's ``seq``: the caller checks there is one per entry), and their
    parameters. ``after`` names the statement's other parts (each with a RETURNING clause) to run
    to completion before the chain's lock is taken, so that the lock is held for the chain's own
    rows and the commit, not for the rest of the statement's writing. ``verify`` checks these rows
    with the same formula as any other."""
    ts = utcnow()
    rows = [_fields(e, ts) for e in entries]
    params: dict[str, Any] = {"au_mid": [middle(**row) for row in rows]}
    for key in ("ts", "actor_id", "actor_name", "action", "entity", "entity_id", "ip"):
        params[f"au_{key}"] = [row[key] for row in rows]
    params["au_changes"] = [
        None if row["changes"] is None else json.dumps(row["changes"], ensure_ascii=False) for row in rows
    ]
    if not all(name.isidentifier() for name in after):
        raise ValueError(f"not names of a statement's parts: {after!r}")
    done = " + ".join(f"(SELECT count(*) FROM {name})" for name in after) or "0"  # noqa: S608
    ctes = (_PG_APPEND_CTES[0].format(after=done), *_PG_APPEND_CTES[1:])
    return ctes, _PG_APPEND_INSERT, params


def entry_for(
    actor: Principal,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    changes: dict[str, Any] | None = None,
) -> Entry:
    """An ``Entry`` for a service acting as ``actor`` (the system principal is stored without an id)."""
    return Entry(actor.user_id or None, actor.username, action, entity, entity_id, changes, actor.ip)


async def record_action(
    session: AsyncSession,
    actor: Principal,
    action: str,
    entity: str,
    entity_id: str | int | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """``record`` for a service acting as ``actor``."""
    await record_many(session, [entry_for(actor, action, entity, entity_id, changes)])


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    head_hash: str
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


async def _rows(session: AsyncSession, batch: int = 5000) -> AsyncIterator[AuditLog]:
    after = 0
    while True:
        chunk = (
            await session.scalars(
                select(AuditLog).where(AuditLog.seq > after).order_by(AuditLog.seq).limit(batch)
            )
        ).all()
        if not chunk:
            return
        for row in chunk:
            yield row
        after = chunk[-1].seq
        session.expunge_all()


async def verify(session: AsyncSession) -> VerifyResult:
    problems: list[ChainProblem] = []
    expected_seq, expected_prev, count = 1, GENESIS_HASH, 0
    async for row in _rows(session):
        count += 1
        if row.seq != expected_seq:
            problems.append(ChainProblem(row.seq, f"missing rows {expected_seq}..{row.seq - 1}"))
        if row.prev_hash != expected_prev:
            problems.append(ChainProblem(row.seq, "prev_hash does not match the previous row"))
        if _row_digest(row) != row.hash:
            problems.append(ChainProblem(row.seq, "row content does not match its hash"))
        expected_seq, expected_prev = row.seq + 1, row.hash
    return VerifyResult(rows=count, head_hash=expected_prev, problems=problems)
