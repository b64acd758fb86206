"""Idempotency keys: a client that retries a write with the same ``Idempotency-Key`` gets the first
answer again, and the write happens once.

A key belongs to one user and one scope (e.g. ``incidents.create``). The first request claims the key
by inserting its row *before* doing the work, in the same transaction, so the row and the effect
commit or roll back together. Concurrent retries block on the unique index (PostgreSQL) or on the
write lock (SQLite, ``BEGIN IMMEDIATE``) until the first commits; they then find the stored
response. The same key with a different request body is refused with 409
``idempotency_key_reused``.

Usage inside a service (no commit in between)::

    stored = await idempotency.claim(session, user_id=…, scope=…, key=…, request_hash=…)
    if stored is not None:
        return stored.body                  # a replay
    … do the work, flush …
    idempotency.remember(session, …, status_code=201, body=out)   # then commit;
    on IntegrityError at commit: rollback and ``await idempotency.replay(...)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from eqian.core.db import Base, UTCDateTime, dialect_insert, utcnow
from eqian.core.errors import Conflict, field_error

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
KEEP = dt.timedelta(days=2)  # how long a key is remembered (the purge job deletes older ones)
PENDING = 0  # status_code of a claimed key whose response is not stored yet


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)  # 0 for the system principal
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=PENDING)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


@dataclass(frozen=True)
class Stored:
    status_code: int
    body: dict[str, Any]


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise field_error("Idempotency-Key", "须为 1–128 个可打印 ASCII 字符", "invalid")
    return key


def request_hash(payload: Any) -> str:
    """A stable digest of the request (canonical JSON)."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def _find(session: AsyncSession, user_id: int, scope: str, key: str) -> IdempotencyKey | None:
    return await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.scope == scope, IdempotencyKey.key == key
        )
    )


def _stored(row: IdempotencyKey, digest: str) -> Stored:
    if row.request_hash != digest:
        raise Conflict("该 Idempotency-Key 已用于内容不同的请求", code="idempotency_key_reused")
    if row.status_code == PENDING or row.response is None:  # cannot be seen committed, but be safe
        raise Conflict("相同 Idempotency-Key 的请求正在处理，请稍后重试", code="idempotency_in_progress")
    return Stored(row.status_code, row.response)


async def claim(
    session: AsyncSession, *, user_id: int, scope: str, key: str, request_hash: str
) -> Stored | None:
    """The stored answer of an earlier request with this key, or ``None`` after claiming the key
    for this request. One statement for a new key (an intake request's usual case): a concurrent
    claimer of the same key waits in PostgreSQL until this transaction ends, then finds its answer."""
    claimed = await session.scalar(
        dialect_insert(session)(IdempotencyKey)
        .values(
            user_id=user_id,
            scope=scope,
            key=key,
            request_hash=request_hash,
            status_code=PENDING,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "scope", "key"])
        .returning(IdempotencyKey.id)
    )
    if claimed is not None:
        return None
    row = await _find(session, user_id, scope, key)
    if row is None:  # claimed and rolled back, or purged, in between: the client may retry
        raise Conflict("相同 Idempotency-Key 的请求正在处理，请稍后重试", code="idempotency_in_progress")
    return _stored(row, request_hash)


async def remember(
    session: AsyncSession, *, user_id: int, scope: str, key: str, status_code: int, body: dict[str, Any]
) -> None:
    """Store the answer on the claimed row (same transaction as the effect)."""
    stored = await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        .values(status_code=status_code, response=body)
        .execution_options(synchronize_session=False)
    )
    if stored.rowcount != 1:  # type: ignore[attr-defined]  # pragma: no cover - claim() runs first
        raise RuntimeError("idempotency key was not claimed")


async def replay(session: AsyncSession, *, user_id: int, scope: str, key: str, request_hash: str) -> Stored:
    """After losing a race at commit: the winner's stored answer."""
    row = await _find(session, user_id, scope, key)
    if row is None:
        raise Conflict("相同 Idempotency-Key 的请求正在处理，请稍后重试", code="idempotency_in_progress")
    return _stored(row, request_hash)


async def purge(session: AsyncSession, *, now: dt.datetime) -> int:
    """Forget keys older than ``KEEP``; commits. Idempotent (a periodic job)."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
