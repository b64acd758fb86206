"""Rules of messaging: who is in a channel, who may read and post, messages with a gap-free
per-channel ``seq``, instructions with per-unit receipts, escalation, assistance requests.

Every write commits first and publishes after (``eqian.core.pubsub``), so nothing is announced
that is not stored; a client that missed a publication gets it from the database on resume.
Channels, instructions, assistance requests and attachments are audited; individual chat
messages and receipts are themselves the record (sender, time, seq), so they are not copied into
the audit chain (which would serialise every message of the city on one lock).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import audit, outbox, pubsub
from eqian.core.accounts import Role, User
from eqian.core.db import dialect_insert, table_of, utcnow
from eqian.core.errors import Conflict, Forbidden, NotFound, field_error
from eqian.core.geo import haversine_m
from eqian.core.permissions import Principal, ScopeKind
from eqian.messaging import schemas
from eqian.messaging.models import (
    Assistance,
    Attachment,
    Channel,
    ChannelUnit,
    ChannelUser,
    Instruction,
    Message,
    Receipt,
)
from eqian.organizations.categories import CATEGORIES
from eqian.organizations.models import ServicePoint, Station, Unit
from eqian.organizations.service import affairs_clause, affairs_unit_ids

OFFICER_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER, Role.LIAISON_OFFICER})
COMMAND_ROLES = frozenset({Role.BUREAU_ADMIN, Role.STATION_OFFICER})
REGISTRY_KINDS = ("station", "category", "service_point")
CATEGORY_NAMES = {c.code: c.name_zh for c in CATEGORIES}
SENT_TOPIC = "messaging.instruction_sent"
OVERDUE_TOPIC = "messaging.instruction_overdue"


def channel_topic(channel_id: int) -> str:
    return f"channel:{channel_id}"


CHANNELS_TOPIC = "channels"  # a channel was created: workers let matching connections join it


# --- registry channels ---------------------------------------------------------------------------


async def ensure_channels(session: AsyncSession) -> int:
    """Create the missing station / category / service-point channels; idempotent and safe when
    several workers race (insert … on conflict do nothing on the unique key). Commits."""
    stations = list(await session.execute(select(Station.id, Station.name).order_by(Station.id)))
    points = list(await session.execute(select(ServicePoint.id, ServicePoint.station_id, ServicePoint.name)))
    wanted: list[dict[str, Any]] = []
    for sid, sname in stations:
        wanted.append(
            {"kind": "station", "key": f"station:{sid}", "name": f"{sname}·全体单位", "station_id": sid}
        )
        for code, cname in CATEGORY_NAMES.items():
            wanted.append(
                {
                    "kind": "category",
                    "key": f"category:{sid}:{code}",
                    "name": f"{sname}·{cname}",
                    "station_id": sid,
                    "category_code": code,
                }
            )
    for pid, sid, pname in points:
        wanted.append(
            {
                "kind": "service_point",
                "key": f"sp:{pid}",
                "name": pname,
                "station_id": sid,
                "service_point_id": pid,
            }
        )
    have = set(await session.scalars(select(Channel.key).where(Channel.kind.in_(REGISTRY_KINDS))))
    rows = [
        {"category_code": None, "service_point_id": None, "last_seq": 0, "created_at": utcnow(), **w}
        for w in wanted
        if w["key"] not in have
    ]
    if rows:
        stmt = dialect_insert(session)(Channel).on_conflict_do_nothing(index_elements=["key"])
        await session.execute(stmt, rows)
    await session.commit()
    return len(rows)


# --- membership and access ----------------------------------------------------------------------


def member_clause(channel: Channel) -> ColumnElement[bool]:
    """The channel's member units as a WHERE clause on ``Unit``, derived from the registry where the
    channel is. A clause rather than ``Unit.id IN (SELECT …)``: a self-join of ``units`` gets a
    quadratic nested loop from the planner while the table has no statistics yet (a fresh
    import): 0.3 s for an instruction to 2,000 units, before ``ANALYZE``."""
    active = Unit.status == "active"
    match channel.kind:
        case "station":
            return and_(Unit.station_id == channel.station_id, active)
        case "category":
            return and_(
                Unit.station_id == channel.station_id, Unit.category_code == channel.category_code, active
            )
        case "service_point":
            return and_(Unit.service_point_id == channel.service_point_id, active)
        case "direct":
            return Unit.id == channel.unit_id
        case _:
            return Unit.id.in_(select(ChannelUnit.unit_id).where(ChannelUnit.channel_id == channel.id))


def channel_clause(actor: Principal) -> ColumnElement[bool]:
    """The channels ``actor`` may read, as a WHERE clause on ``Channel``."""
    scope = actor.scope
    explicit = or_(
        Channel.id.in_(select(ChannelUser.channel_id).where(ChannelUser.user_id == actor.user_id)),
        Channel.officer_id == actor.user_id,
    )
    if scope.kind is ScopeKind.ALL:
        return true()
    if scope.kind is ScopeKind.STATIONS:
        return or_(
            Channel.station_id.in_(scope.station_ids),
            explicit,
            # A bureau's request or group reaching units of several stations belongs to one of
            # them, but every station whose units it reaches follows their replies.
            and_(
                Channel.kind.in_(("group", "assistance")),
                Channel.id.in_(
                    select(ChannelUnit.channel_id)
                    .join(Unit, Unit.id == ChannelUnit.unit_id)
                    .where(Unit.station_id.in_(scope.station_ids))
                ),
            ),
        )
    mine = affairs_clause(scope)
    active = Unit.status == "active"
    return or_(
        explicit,
        and_(
            Channel.kind == "station",
            Channel.station_id.in_(select(Unit.station_id).where(mine, active)),
        ),
        and_(
            Channel.kind == "category",
            exists(
                select(Unit.id).where(
                    mine,
                    active,
                    Unit.station_id == Channel.station_id,
                    Unit.category_code == Channel.category_code,
                )
            ),
        ),
        and_(
            Channel.kind == "service_point",
            Channel.service_point_id.in_(select(Unit.service_point_id).where(mine, active)),
        ),
        and_(Channel.kind == "direct", Channel.unit_id.in_(affairs_unit_ids(scope))),
        and_(
            Channel.kind.in_(("group", "assistance")),
            Channel.id.in_(
                select(ChannelUnit.channel_id).where(ChannelUnit.unit_id.in_(affairs_unit_ids(scope)))
            ),
        ),
    )


def can_post(actor: Principal, channel: Channel) -> bool:
    """Officers post anywhere they see; others only in groups, direct and assistance channels
    (the registry channels are the station's broadcast lists)."""
    return actor.role in OFFICER_ROLES or channel.kind in ("group", "direct", "assistance")


def can_instruct(actor: Principal) -> bool:
    return actor.role in COMMAND_ROLES


async def get_channel(session: AsyncSession, actor: Principal, channel_id: int) -> Channel:
    channel = await session.scalar(select(Channel).where(Channel.id == channel_id, channel_clause(actor)))
    if channel is None:
        raise NotFound("频道不存在")
    return channel


async def visible_channels(session: AsyncSession, actor: Principal) -> list[Channel]:
    """The channels ``actor`` may read (a unit's staff go through ``visible_channels_many``)."""
    rows = await session.scalars(select(Channel).where(channel_clause(actor)).order_by(Channel.id))
    return list(rows)


async def visible_channels_many(session: AsyncSession, actors: list[Principal]) -> list[list[Channel]]:
    """``visible_channels`` for many actors at once (the sockets of a connection storm): a unit's
    staff by the same rule as ``channel_clause``, with the units looked up first, in four queries
    for the whole batch; others one by one."""
    out: list[list[Channel] | None] = [None] * len(actors)
    unit_of: dict[int, int] = {}
    for i, actor in enumerate(actors):
        if actor.scope.kind is ScopeKind.UNITS and len(actor.scope.unit_ids) == 1:
            unit_of[i] = next(iter(actor.scope.unit_ids))
        else:
            out[i] = await visible_channels(session, actor)
    if unit_of:
        unit_ids = set(unit_of.values())
        user_ids = {actors[i].user_id for i in unit_of}
        units = {
            uid: (st, cat, point)
            for uid, st, cat, point in await session.execute(
                select(Unit.id, Unit.station_id, Unit.category_code, Unit.service_point_id).where(
                    Unit.id.in_(unit_ids), Unit.status == "active"
                )
            )
        }
        stations = {st for st, _, _ in units.values()}
        points = {p for _, _, p in units.values() if p is not None}
        shared = list(
            await session.scalars(
                select(Channel).where(
                    or_(
                        and_(Channel.kind.in_(("station", "category")), Channel.station_id.in_(stations)),
                        and_(Channel.kind == "service_point", Channel.service_point_id.in_(points)),
                        and_(Channel.kind == "direct", Channel.unit_id.in_(unit_ids)),
                        Channel.officer_id.in_(user_ids),
                    )
                )
            )
        )
        by_unit: dict[int, set[int]] = defaultdict(set)
        by_user: dict[int, set[int]] = defaultdict(set)
        extra: dict[int, Channel] = {}
        for cu, ch in await session.execute(
            select(ChannelUnit.unit_id, Channel)
            .join(Channel, Channel.id == ChannelUnit.channel_id)
            .where(ChannelUnit.unit_id.in_(unit_ids), Channel.kind.in_(("group", "assistance")))
        ):
            by_unit[cu].add(ch.id)
            extra[ch.id] = ch
        for cu, ch in await session.execute(
            select(ChannelUser.user_id, Channel)
            .join(Channel, Channel.id == ChannelUser.channel_id)
            .where(ChannelUser.user_id.in_(user_ids))
        ):
            by_user[cu].add(ch.id)
            extra[ch.id] = ch
        for i, unit_id in unit_of.items():
            user_id = actors[i].user_id
            station, category, point = units.get(unit_id, (None, None, None))
            mine: dict[int, Channel] = {}
            for ch in shared:
                if (
                    ch.officer_id == user_id
                    or (ch.kind == "direct" and ch.unit_id == unit_id)
                    or (ch.kind == "station" and station is not None and ch.station_id == station)
                    or (
                        ch.kind == "category"
                        and station is not None
                        and ch.station_id == station
                        and ch.category_code == category
                    )
                    or (ch.kind == "service_point" and point is not None and ch.service_point_id == point)
                ):
                    mine[ch.id] = ch
            for cid in by_unit.get(unit_id, set()) | by_user.get(user_id, set()):
                mine[cid] = extra[cid]
            out[i] = [mine[cid] for cid in sorted(mine)]
    return [channels or [] for channels in out]


async def list_channels(
    session: AsyncSession,
    actor: Principal,
    *,
    kind: str | None,
    station_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[schemas.ChannelOut], int]:
    where = [channel_clause(actor)]
    if kind:
        where.append(Channel.kind == kind)
    if station_id:
        where.append(Channel.station_id == station_id)
    total = await session.scalar(select(func.count()).select_from(Channel).where(*where)) or 0
    rows = await session.scalars(
        select(Channel).where(*where).order_by(Channel.id).limit(limit).offset(offset)
    )
    return [schemas.ChannelOut.model_validate(c) for c in rows], total


async def channel_detail(session: AsyncSession, actor: Principal, channel_id: int) -> schemas.ChannelDetail:
    channel = await get_channel(session, actor, channel_id)
    units = await session.scalar(select(func.count()).select_from(Unit).where(member_clause(channel))) or 0
    users = list(
        await session.scalars(select(ChannelUser.user_id).where(ChannelUser.channel_id == channel.id))
    )
    if channel.officer_id:
        users.append(channel.officer_id)
    base = schemas.ChannelOut.model_validate(channel).model_dump()
    return schemas.ChannelDetail(
        **base,
        member_units=units,
        member_users=sorted(set(users)),
        can_post=can_post(actor, channel),
        can_instruct=can_instruct(actor),
    )


def _station_of(actor: Principal) -> int | None:
    if actor.scope.kind is ScopeKind.STATIONS and len(actor.scope.station_ids) == 1:
        return next(iter(actor.scope.station_ids))
    return None


async def _announce_channel(
    channel: Channel,
    unit_ids: Iterable[int],
    user_ids: Iterable[int],
    station_ids: Iterable[int] = (),
) -> None:
    """Open sockets that may read a new channel join it: its own station's officers, those of the
    stations of its units (``station_ids``), its units and its explicit members (the hub adds the
    channel's own station to ``station_ids``)."""
    await pubsub.publish(
        CHANNELS_TOPIC,
        {
            "channel_id": channel.id,
            "station_id": channel.station_id,
            "station_ids": sorted(set(station_ids)),
            "unit_ids": sorted(set(unit_ids)),
            "user_ids": sorted(set(user_ids)),
        },
    )


async def create_group(session: AsyncSession, actor: Principal, body: schemas.GroupIn) -> schemas.ChannelOut:
    if actor.role not in OFFICER_ROLES:
        raise Forbidden("只有民警可以建立群组")
    unit_stations: dict[int, int] = {}
    if body.unit_ids:
        rows = await session.execute(
            select(Unit.id, Unit.station_id).where(Unit.id.in_(body.unit_ids), affairs_clause(actor.scope))
        )
        unit_stations = {row[0]: row[1] for row in rows}
        if missing := [u for u in body.unit_ids if u not in unit_stations]:
            raise field_error("unit_ids", f"单位不存在或不在您的辖区内: {missing[:5]}", "not_found")
    if body.user_ids:
        found = set(
            await session.scalars(select(User.id).where(User.id.in_(body.user_ids), User.is_active.is_(True)))
        )
        if missing := [u for u in body.user_ids if u not in found]:
            raise field_error("user_ids", f"用户不存在: {missing[:5]}", "not_found")
    channel = Channel(kind="group", name=body.name, station_id=_station_of(actor), created_by=actor.user_id)
    session.add(channel)
    await session.flush()
    users = list(dict.fromkeys([actor.user_id, *body.user_ids]))
    if body.unit_ids:
        await session.execute(
            insert(table_of(ChannelUnit)), [{"channel_id": channel.id, "unit_id": u} for u in body.unit_ids]
        )
    await session.execute(
        insert(table_of(ChannelUser)), [{"channel_id": channel.id, "user_id": u} for u in users]
    )
    await audit.record_action(
        session,
        actor,
        "messaging.channel.create",
        "msg_channel",
        channel.id,
        {"name": body.name, "units": len(body.unit_ids), "users": len(users)},
    )
    await session.commit()
    await _announce_channel(channel, body.unit_ids, users, unit_stations.values())
    return schemas.ChannelOut.model_validate(channel)


async def open_direct(session: AsyncSession, actor: Principal, body: schemas.DirectIn) -> schemas.ChannelOut:
    """Get or create the direct conversation between an officer and a unit."""
    if actor.role in OFFICER_ROLES:
        if body.unit_id is None:
            raise field_error("unit_id", "请指定单位", "required")
        unit = await session.scalar(select(Unit).where(Unit.id == body.unit_id, affairs_clause(actor.scope)))
        if unit is None:
            raise NotFound("单位不存在")
        officer_id = actor.user_id
    elif actor.role is Role.UNIT_SECURITY:
        if body.officer_id is None:
            raise field_error("officer_id", "请指定民警", "required")
        unit = await session.get(Unit, next(iter(actor.scope.unit_ids)))
        officer = await session.get(User, body.officer_id)
        if (
            unit is None
            or officer is None
            or not officer.is_active
            or Role(officer.role) not in OFFICER_ROLES
            or not await _officer_covers(session, officer, unit)
        ):
            raise NotFound("民警不存在")
        officer_id = officer.id
    else:
        raise Forbidden("您的角色无权发起单聊")
    key = f"direct:{unit.id}:{officer_id}"
    channel = await session.scalar(select(Channel).where(Channel.key == key))
    if channel is not None:
        return schemas.ChannelOut.model_validate(channel)
    officer_name = await session.scalar(select(User.display_name).where(User.id == officer_id)) or ""
    channel = Channel(
        kind="direct",
        key=key,
        name=f"{unit.name} ↔ {officer_name}",
        station_id=unit.station_id,
        unit_id=unit.id,
        officer_id=officer_id,
        created_by=actor.user_id,
    )
    session.add(channel)
    await session.flush()
    await audit.record_action(
        session, actor, "messaging.channel.direct", "msg_channel", channel.id, {"unit_id": unit.id}
    )
    await session.commit()
    await _announce_channel(channel, [unit.id], [officer_id])
    return schemas.ChannelOut.model_validate(channel)


async def _officer_covers(session: AsyncSession, officer: User, unit: Unit) -> bool:
    role = Role(officer.role)
    if role is Role.BUREAU_ADMIN:
        return True
    if role is Role.STATION_OFFICER:
        return officer.station_id == unit.station_id
    from eqian.organizations.models import LiaisonAssignment

    found = await session.scalar(
        select(LiaisonAssignment.unit_id).where(
            LiaisonAssignment.unit_id == unit.id, LiaisonAssignment.officer_id == officer.id
        )
    )
    return found is not None


# --- messages ------------------------------------------------------------------------------------


async def next_seq(session: AsyncSession, channel_id: int) -> int:
    """Bump the channel's counter inside the caller's transaction. The row stays locked until
    commit (PostgreSQL row lock; SQLite's write lock), so seqs are gap-free and commit in order."""
    seq = await session.scalar(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(last_seq=Channel.last_seq + 1)
        .returning(Channel.last_seq)
    )
    if seq is None:
        raise NotFound("频道不存在")
    return int(seq)


async def _attachments_for(
    session: AsyncSession, message_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if not message_ids:
        return out
    rows = await session.scalars(
        select(Attachment).where(Attachment.message_id.in_(list(message_ids))).order_by(Attachment.id)
    )
    for a in rows:
        if a.message_id is None:
            continue
        out.setdefault(a.message_id, []).append(
            {"id": a.id, "name": a.name, "content_type": a.content_type, "size": a.size}
        )
    return out


async def render_messages(session: AsyncSession, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The wire shape of messages (the same over HTTP and WebSocket, without ``type``)."""
    if not messages:
        return []
    sender_ids = {m.sender_id for m in messages if m.sender_id}
    senders = {
        uid: (name, role, unit_id, unit_name)
        for uid, name, role, unit_id, unit_name in await session.execute(
            select(User.id, User.display_name, User.role, User.unit_id, Unit.name)
            .outerjoin(Unit, Unit.id == User.unit_id)
            .where(User.id.in_(sender_ids))
        )
    }
    attachments = await _attachments_for(session, [m.id for m in messages])
    instruction_ids = {m.instruction_id for m in messages if m.instruction_id}
    instructions = {
        i.id: i for i in await session.scalars(select(Instruction).where(Instruction.id.in_(instruction_ids)))
    }
    assistance_ids = {m.assistance_id for m in messages if m.assistance_id and m.kind == "assistance"}
    assistance = {
        a.id: a for a in await session.scalars(select(Assistance).where(Assistance.id.in_(assistance_ids)))
    }
    out = []
    for m in messages:
        name, role, unit_id, unit_name = senders.get(m.sender_id or 0, ("系统", "system", None, None))
        instr = instructions.get(m.instruction_id or 0)
        assist = assistance.get(m.assistance_id or 0)
        out.append(
            {
                "channel_id": m.channel_id,
                "seq": m.seq,
                "id": m.id,
                "kind": m.kind,
                "sender": {
                    "id": m.sender_id,
                    "name": name,
                    "role": role,
                    "unit_id": unit_id,
                    "unit_name": unit_name,
                },
                "body": m.body,
                "reply_to": m.reply_to,
                "mentions": list(m.mentions or []),
                "attachments": attachments.get(m.id, []),
                "instruction": (
                    {
                        "id": instr.id,
                        "title": instr.title,
                        "deadline": instr.deadline.isoformat(),
                        "requires_ack": True,
                    }
                    if instr is not None
                    else None
                ),
                "assistance": (
                    {
                        "id": assist.id,
                        "description": assist.description,
                        "lat": assist.lat,
                        "lng": assist.lng,
                        "radius_m": assist.radius_m,
                        "attachment_id": assist.attachment_id,
                        "status": assist.status,
                    }
                    if assist is not None
                    else None
                ),
                "created_at": m.created_at.isoformat(),
            }
        )
    return out


async def messages_after(
    session: AsyncSession, channel_id: int, after_seq: int, limit: int | None = None
) -> list[dict[str, Any]]:
    """Messages of a channel with seq > after_seq, in order (no access check: callers check)."""
    query = (
        select(Message).where(Message.channel_id == channel_id, Message.seq > after_seq).order_by(Message.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return await render_messages(session, list(await session.scalars(query)))


async def list_messages(
    session: AsyncSession,
    actor: Principal,
    channel_id: int,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """``after_seq``: the next ``limit`` messages after it (oldest first); ``before_seq`` or neither:
    the ``limit`` latest before it (still oldest first). ``total``: messages matching the bound."""
    channel = await get_channel(session, actor, channel_id)
    where = [Message.channel_id == channel.id]
    if after_seq is not None:
        where.append(Message.seq > after_seq)
        query = select(Message).where(*where).order_by(Message.seq).limit(limit)
        rows = list(await session.scalars(query))
    else:
        if before_seq is not None:
            where.append(Message.seq < before_seq)
        query = select(Message).where(*where).order_by(Message.seq.desc()).limit(limit)
        rows = list(reversed(list(await session.scalars(query))))
    total = await session.scalar(select(func.count()).select_from(Message).where(*where)) or 0
    return await render_messages(session, rows), total


async def _store_message(
    session: AsyncSession,
    actor: Principal,
    channel: Channel,
    *,
    body: str,
    kind: str = "text",
    reply_to: int | None = None,
    mentions: Sequence[int] = (),
    attachment_ids: Sequence[int] = (),
    instruction_id: int | None = None,
    assistance_id: int | None = None,
) -> Message:
    if reply_to is not None:
        parent = await session.scalar(
            select(Message.id).where(Message.id == reply_to, Message.channel_id == channel.id)
        )
        if parent is None:
            raise field_error("reply_to", "被回复的消息不在此频道", "not_found")
    attachments: list[Attachment] = []
    if attachment_ids:
        attachments = list(
            await session.scalars(
                select(Attachment).where(
                    Attachment.id.in_(list(attachment_ids)),
                    Attachment.uploader_id == actor.user_id,
                    Attachment.message_id.is_(None),
                )
            )
        )
        if len(attachments) != len(set(attachment_ids)):
            raise field_error("attachment_ids", "附件不存在或已被使用", "not_found")
    seq = await next_seq(session, channel.id)
    message = Message(
        channel_id=channel.id,
        seq=seq,
        kind=kind,
        sender_id=actor.user_id or None,
        body=body,
        reply_to=reply_to,
        mentions=list(mentions),
        instruction_id=instruction_id,
        assistance_id=assistance_id,
        created_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    for a in attachments:
        a.message_id = message.id
    return message


async def publish_message(session: AsyncSession, message: Message) -> dict[str, Any]:
    rendered = (await render_messages(session, [message]))[0]
    await pubsub.publish(channel_topic(message.channel_id), {"type": "message", **rendered})
    return rendered


async def send_message(
    session: AsyncSession, actor: Principal, channel_id: int, body: schemas.MessageIn
) -> dict[str, Any]:
    channel = await get_channel(session, actor, channel_id)
    if not can_post(actor, channel):
        raise Forbidden("此频道仅限民警发布")
    if not body.body and not body.attachment_ids:
        raise field_error("body", "消息不能为空", "required")
    if body.client_id is not None and (again := await _sent_before(session, actor, body.client_id)):
        return again
    if channel.kind == "assistance":
        status = await session.scalar(select(Assistance.status).where(Assistance.channel_id == channel.id))
        if status == "closed":
            raise Conflict("协查已结束", code="assistance_closed")
    message = await _store_message(
        session,
        actor,
        channel,
        body=body.body,
        reply_to=body.reply_to,
        mentions=body.mentions,
        attachment_ids=body.attachment_ids,
    )
    message.client_id = body.client_id
    try:
        await session.commit()
    except IntegrityError:  # the same client_id sent twice at once: the other one won
        await session.rollback()
        if body.client_id is not None and (again := await _sent_before(session, actor, body.client_id)):
            return again
        raise
    return await publish_message(session, message)


async def _sent_before(session: AsyncSession, actor: Principal, client_id: str) -> dict[str, Any] | None:
    """The message this sender already sent with ``client_id`` (not published again)."""
    earlier = await session.scalar(
        select(Message).where(Message.sender_id == actor.user_id, Message.client_id == client_id)
    )
    return (await render_messages(session, [earlier]))[0] if earlier is not None else None


# --- attachments ---------------------------------------------------------------------------------


async def store_attachment(
    session: AsyncSession, actor: Principal, *, name: str, data: bytes, max_bytes: int, storage: Any
) -> schemas.AttachmentOut:
    from eqian.core.storage import new_key, sniff_content_type

    if not data:
        raise field_error("file", "文件为空", "required")
    if len(data) > max_bytes:
        raise field_error("file", f"文件不能超过 {max_bytes // (1024 * 1024)} MB", "too_large")
    content_type = sniff_content_type(data)
    if content_type is None:
        raise field_error("file", "只接受 PNG、JPEG 图片或 PDF 文件", "unsupported_type")
    key = new_key("messaging")
    await storage.put(key, data, content_type)
    row = Attachment(
        key=key,
        name=(name or "file")[:200],
        content_type=content_type,
        size=len(data),
        uploader_id=actor.user_id,
    )
    session.add(row)
    try:
        await session.flush()
        await audit.record_action(
            session, actor, "messaging.attachment.upload", "msg_attachment", row.id, {"size": len(data)}
        )
        await session.commit()
    except BaseException:
        await storage.delete(key)
        raise
    return schemas.AttachmentOut.model_validate(row)


async def get_attachment(session: AsyncSession, actor: Principal, attachment_id: int) -> Attachment:
    row = await session.get(Attachment, attachment_id)
    if row is None:
        raise NotFound("附件不存在")
    if row.uploader_id == actor.user_id:
        return row
    channel_id: int | None = None
    if row.message_id is not None:
        channel_id = await session.scalar(select(Message.channel_id).where(Message.id == row.message_id))
    else:
        channel_id = await session.scalar(
            select(Assistance.channel_id).where(Assistance.attachment_id == row.id)
        )
    if channel_id is None:
        raise NotFound("附件不存在")
    await get_channel(session, actor, channel_id)
    return row


# --- instructions --------------------------------------------------------------------------------


def _progress_query(instruction_id: int, now: dt.datetime) -> Select[Any]:
    def count(cond: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    return select(
        func.count(),
        count(Receipt.delivered_at.is_not(None)),
        count(Receipt.read_at.is_not(None)),
        count(Receipt.acknowledged_at.is_not(None)),
        count(and_(Receipt.acknowledged_at.is_(None), Receipt.deadline < now)),
    ).where(Receipt.instruction_id == instruction_id)


async def progress(session: AsyncSession, instruction_id: int) -> schemas.ProgressOut:
    total, delivered, read, acked, overdue = (
        await session.execute(_progress_query(instruction_id, utcnow()))
    ).one()
    return schemas.ProgressOut(
        instruction_id=instruction_id,
        total=int(total),
        delivered=int(delivered),
        read=int(read),
        acknowledged=int(acked),
        overdue=int(overdue),
    )


async def publish_progress(
    session: AsyncSession, instruction_id: int, channel_id: int
) -> schemas.ProgressOut:
    p = await progress(session, instruction_id)
    await pubsub.publish(channel_topic(channel_id), {"type": "progress", **p.model_dump()})
    return p


async def create_instruction(
    session: AsyncSession, actor: Principal, body: schemas.InstructionIn
) -> schemas.InstructionOut:
    if not can_instruct(actor):
        raise Forbidden("只有派出所民警或分局可以下发指令")
    channel = await get_channel(session, actor, body.channel_id)
    now = utcnow()
    if body.deadline <= now:
        raise field_error("deadline", "截止时间须晚于现在", "in_past")
    recipients = and_(member_clause(channel), affairs_clause(actor.scope))
    total = await session.scalar(select(func.count()).select_from(Unit).where(recipients)) or 0
    if not total:
        raise field_error("channel_id", "该频道没有可接收指令的单位", "no_recipients")
    instruction = Instruction(
        channel_id=channel.id,
        station_id=channel.station_id,
        sender_id=actor.user_id or None,
        title=body.title,
        body=body.body,
        deadline=body.deadline,
        total=total,
        created_at=now,
    )
    session.add(instruction)
    await session.flush()
    message = await _store_message(
        session,
        actor,
        channel,
        body=body.body or body.title,
        kind="instruction",
        instruction_id=instruction.id,
    )
    instruction.message_id = message.id
    # One statement however many units (20,000 in a city): the receipts never pass through Python.
    created = await session.execute(
        insert(table_of(Receipt)).from_select(
            ["instruction_id", "unit_id", "station_id", "deadline"],
            select(
                literal(instruction.id, Integer),
                Unit.id,
                Unit.station_id,
                literal(body.deadline, table_of(Receipt).c.deadline.type),
            ).where(recipients),
        )
    )
    instruction.total = total = cast(Any, created).rowcount  # the units as they were at the insert
    await audit.record_action(
        session,
        actor,
        "messaging.instruction.create",
        "msg_instruction",
        instruction.id,
        {"channel_id": channel.id, "title": body.title, "recipients": total},
    )
    outbox.emit(
        session,
        SENT_TOPIC,
        {
            "instruction_id": instruction.id,
            "message_id": message.id,
            "channel_id": channel.id,
            "station_id": channel.station_id,
            "unit_id": None,
            "title": body.title,
            "recipients": total,
            "deadline": body.deadline.isoformat(),
            "at": now.isoformat(),
        },
    )
    await session.commit()
    await publish_message(session, message)
    p = await publish_progress(session, instruction.id, channel.id)
    return _instruction_out(instruction, p)


def _instruction_out(i: Instruction, p: schemas.ProgressOut) -> schemas.InstructionOut:
    return schemas.InstructionOut(
        id=i.id,
        channel_id=i.channel_id,
        message_id=i.message_id,
        station_id=i.station_id,
        sender_id=i.sender_id,
        title=i.title,
        body=i.body,
        deadline=i.deadline,
        created_at=i.created_at,
        escalated_at=i.escalated_at,
        progress=p,
    )


async def _instruction_in_scope(session: AsyncSession, actor: Principal, instruction_id: int) -> Instruction:
    instruction = await session.get(Instruction, instruction_id)
    if instruction is None:
        raise NotFound("指令不存在")
    if actor.role is Role.UNIT_SECURITY:
        mine = await session.scalar(
            select(Receipt.unit_id).where(
                Receipt.instruction_id == instruction.id, Receipt.unit_id.in_(actor.scope.unit_ids)
            )
        )
        if mine is None:
            raise NotFound("指令不存在")
        return instruction
    await get_channel(session, actor, instruction.channel_id)
    return instruction


async def get_instruction(
    session: AsyncSession, actor: Principal, instruction_id: int
) -> schemas.InstructionOut:
    instruction = await _instruction_in_scope(session, actor, instruction_id)
    return _instruction_out(instruction, await progress(session, instruction.id))


def receipt_status(r: Receipt, now: dt.datetime) -> str:
    if r.acknowledged_at is not None:
        return "acknowledged"
    if r.deadline < now:
        return "overdue"
    if r.read_at is not None:
        return "read"
    if r.delivered_at is not None:
        return "delivered"
    return "pending"


async def list_receipts(
    session: AsyncSession,
    actor: Principal,
    instruction_id: int,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[schemas.ReceiptOut], int]:
    instruction = await _instruction_in_scope(session, actor, instruction_id)
    now = utcnow()
    where: list[ColumnElement[bool]] = [Receipt.instruction_id == instruction.id, affairs_clause(actor.scope)]
    match status:
        case "acknowledged":
            where.append(Receipt.acknowledged_at.is_not(None))
        case "pending":
            where.append(Receipt.acknowledged_at.is_(None))
        case "overdue":
            where += [Receipt.acknowledged_at.is_(None), Receipt.deadline < now]
        case "escalated":
            where.append(Receipt.escalated_at.is_not(None))
        case "delivered":
            where += [
                Receipt.delivered_at.is_not(None),
                Receipt.read_at.is_(None),
                Receipt.acknowledged_at.is_(None),
            ]
        case "read":
            where += [Receipt.read_at.is_not(None), Receipt.acknowledged_at.is_(None)]
    base = select(Receipt, Unit.name).join(Unit, Unit.id == Receipt.unit_id).where(*where)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        base.order_by(Receipt.acknowledged_at.is_(None).desc(), Unit.name, Unit.id)
        .limit(limit)
        .offset(offset)
    )
    return [_receipt_out(r, name, now) for r, name in rows], total


def _receipt_out(r: Receipt, unit_name: str, now: dt.datetime) -> schemas.ReceiptOut:
    return schemas.ReceiptOut(
        instruction_id=r.instruction_id,
        unit_id=r.unit_id,
        unit_name=unit_name,
        station_id=r.station_id,
        status=receipt_status(r, now),
        delivered_at=r.delivered_at,
        read_at=r.read_at,
        acknowledged_at=r.acknowledged_at,
        ack_text=r.ack_text,
        ack_latency_seconds=r.ack_latency_seconds,
        escalated_at=r.escalated_at,
    )


# Receipt transitions, shared by the HTTP API (one at a time) and the WebSocket batcher (many).
# Each only fills a time that is still empty, so a repeat (a client resending after a reconnect)
# changes nothing: acknowledgement is idempotent and the first one wins.
DELIVERED_SQL = text(
    "UPDATE msg_receipts SET delivered_at = :at "
    "WHERE instruction_id = :i AND unit_id = :u AND delivered_at IS NULL"
)
# :dlv is when the message went out to the unit, where the socket knew it (else the same as :at).
READ_SQL = text(
    "UPDATE msg_receipts SET read_at = :at, delivered_at = COALESCE(delivered_at, :dlv) "
    "WHERE instruction_id = :i AND unit_id = :u AND read_at IS NULL"
)
ACK_SQL = text(
    "UPDATE msg_receipts SET acknowledged_at = :at, ack_user_id = :user, ack_text = :text, "
    "ack_latency_seconds = :latency, read_at = COALESCE(read_at, :at), "
    "delivered_at = COALESCE(delivered_at, :dlv) "
    "WHERE instruction_id = :i AND unit_id = :u AND acknowledged_at IS NULL"
)


# PostgreSQL: a batch of receipt updates as one statement over arrays. Row by row (executemany)
# the driver and SQLAlchemy spend tens of microseconds of the event loop's time on each, and
# 20,000 acknowledgements arrive within seconds of a city-wide instruction. Each returns the pairs
# it changed, so a batch needs no query beforehand to find which receipts exist; the latency of an
# acknowledgement is computed against its instruction's creation here, not in Python.
PG_BULK_SQL = {
    "delivered": text(
        "UPDATE msg_receipts AS r SET delivered_at = v.at "
        "FROM unnest(CAST(:i AS int[]), CAST(:u AS int[]), CAST(:at AS timestamptz[])) AS v(i, u, at) "
        "WHERE r.instruction_id = v.i AND r.unit_id = v.u AND r.delivered_at IS NULL "
        "RETURNING r.instruction_id, r.unit_id"
    ),
    "read": text(
        "UPDATE msg_receipts AS r SET read_at = v.at, delivered_at = COALESCE(r.delivered_at, v.dlv) "
        "FROM unnest(CAST(:i AS int[]), CAST(:u AS int[]), CAST(:at AS timestamptz[]), "
        "CAST(:dlv AS timestamptz[])) AS v(i, u, at, dlv) "
        "WHERE r.instruction_id = v.i AND r.unit_id = v.u AND r.read_at IS NULL "
        "RETURNING r.instruction_id, r.unit_id"
    ),
    "ack": text(
        "UPDATE msg_receipts AS r SET acknowledged_at = v.at, ack_user_id = v.usr, ack_text = v.txt, "
        "ack_latency_seconds = GREATEST(0, EXTRACT(EPOCH FROM v.at - ins.created_at)), "
        "read_at = COALESCE(r.read_at, v.at), delivered_at = COALESCE(r.delivered_at, v.dlv) "
        "FROM unnest(CAST(:i AS int[]), CAST(:u AS int[]), CAST(:at AS timestamptz[]), "
        "CAST(:user AS int[]), CAST(:text AS text[]), CAST(:dlv AS timestamptz[])) "
        "AS v(i, u, at, usr, txt, dlv) "
        "JOIN msg_instructions AS ins ON ins.id = v.i "
        "WHERE r.instruction_id = v.i AND r.unit_id = v.u AND r.acknowledged_at IS NULL "
        "RETURNING r.instruction_id, r.unit_id"
    ),
}
ROW_SQL = {"delivered": DELIVERED_SQL, "read": READ_SQL, "ack": ACK_SQL}


async def store_receipt_rows(session: AsyncSession, kind: str, rows: list[dict[str, Any]]) -> None:
    """Apply receipt updates of one kind row by row (each row: at, i, u; for "read" and "ack" dlv;
    for "ack" user, text, latency); any dialect."""
    if rows:
        await session.execute(ROW_SQL[kind], rows)


async def store_receipt_arrays(
    session: AsyncSession, kind: str, rows: list[dict[str, Any]]
) -> set[tuple[int, int]]:
    """PostgreSQL: apply receipt updates of one kind in one statement (each row: at, i, u; for
    "read" and "ack" dlv; for "ack" user and text); the (instruction, unit) pairs it changed. The
    first row of a pair wins, as when they are applied one by one: later ones find the receipt
    already marked."""
    if not rows:
        return set()
    first: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        first.setdefault((row["i"], row["u"]), row)
    keys = {"ack": ("at", "i", "u", "user", "text", "dlv"), "read": ("at", "i", "u", "dlv")}.get(
        kind, ("at", "i", "u")
    )
    result = await session.execute(PG_BULK_SQL[kind], {k: [row[k] for row in first.values()] for k in keys})
    return {(i, u) for i, u in result}


def _sqlite_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def time_binder(dialect: str) -> Callable[[dt.datetime], Any]:
    """How text() binds a timestamp on this dialect (SQLite stores UTC datetimes as naive text); a
    batch looks its session's dialect up once, the session's bind is not free to find."""
    if dialect == "sqlite":
        return _sqlite_time
    return lambda value: value


def bind_time(session: AsyncSession, value: dt.datetime) -> Any:
    return time_binder(session.get_bind().dialect.name)(value)


async def _unit_receipt(
    session: AsyncSession, actor: Principal, instruction_id: int
) -> tuple[Instruction, int]:
    if actor.role is not Role.UNIT_SECURITY:
        raise Forbidden("只有单位安保人员可以确认指令")
    instruction = await _instruction_in_scope(session, actor, instruction_id)
    unit_id = await session.scalar(
        select(Receipt.unit_id).where(
            Receipt.instruction_id == instruction.id, Receipt.unit_id.in_(actor.scope.unit_ids)
        )
    )
    if unit_id is None:
        raise NotFound("指令不存在")
    return instruction, unit_id


async def acknowledge(
    session: AsyncSession, actor: Principal, instruction_id: int, ack_text: str
) -> schemas.ReceiptOut:
    instruction, unit_id = await _unit_receipt(session, actor, instruction_id)
    now = utcnow()
    await session.execute(
        ACK_SQL,
        {
            "at": bind_time(session, now),
            "dlv": bind_time(session, now),
            "user": actor.user_id,
            "text": ack_text or None,
            "latency": (now - instruction.created_at).total_seconds(),
            "i": instruction.id,
            "u": unit_id,
        },
    )
    await session.commit()
    await publish_progress(session, instruction.id, instruction.channel_id)
    return await _receipt_of(session, instruction.id, unit_id)


async def mark_read(session: AsyncSession, actor: Principal, instruction_id: int) -> schemas.ReceiptOut:
    instruction, unit_id = await _unit_receipt(session, actor, instruction_id)
    at = bind_time(session, utcnow())
    await session.execute(READ_SQL, {"at": at, "dlv": at, "i": instruction.id, "u": unit_id})
    await session.commit()
    await publish_progress(session, instruction.id, instruction.channel_id)
    return await _receipt_of(session, instruction.id, unit_id)


async def _receipt_of(session: AsyncSession, instruction_id: int, unit_id: int) -> schemas.ReceiptOut:
    row = (
        await session.execute(
            select(Receipt, Unit.name)
            .join(Unit, Unit.id == Receipt.unit_id)
            .where(Receipt.instruction_id == instruction_id, Receipt.unit_id == unit_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return _receipt_out(row[0], row[1], utcnow())


async def inbox(
    session: AsyncSession, actor: Principal, *, pending_only: bool, limit: int, offset: int
) -> tuple[list[schemas.InboxItem], int]:
    """A unit's instructions, the ones still to acknowledge first."""
    if actor.role is not Role.UNIT_SECURITY:
        raise Forbidden("收件箱仅供单位安保人员使用")
    where: list[ColumnElement[bool]] = [Receipt.unit_id.in_(actor.scope.unit_ids)]
    if pending_only:
        where.append(Receipt.acknowledged_at.is_(None))
    base = (
        select(Receipt, Instruction).join(Instruction, Instruction.id == Receipt.instruction_id).where(*where)
    )
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        base.order_by(Receipt.acknowledged_at.is_(None).desc(), Instruction.deadline, Instruction.id.desc())
        .limit(limit)
        .offset(offset)
    )
    now = utcnow()
    return [
        schemas.InboxItem(
            instruction_id=i.id,
            channel_id=i.channel_id,
            message_id=i.message_id,
            title=i.title,
            body=i.body,
            deadline=i.deadline,
            created_at=i.created_at,
            overdue=r.acknowledged_at is None and r.deadline < now,
            status=receipt_status(r, now),
            delivered_at=r.delivered_at,
            read_at=r.read_at,
            acknowledged_at=r.acknowledged_at,
        )
        for r, i in rows
    ], total


async def list_instructions(
    session: AsyncSession, actor: Principal, *, channel_id: int | None, limit: int, offset: int
) -> tuple[list[schemas.InstructionOut], int]:
    where: list[ColumnElement[bool]] = [
        Instruction.channel_id.in_(select(Channel.id).where(channel_clause(actor)))
    ]
    if channel_id is not None:
        where.append(Instruction.channel_id == channel_id)
    total = await session.scalar(select(func.count()).select_from(Instruction).where(*where)) or 0
    rows = list(
        await session.scalars(
            select(Instruction).where(*where).order_by(Instruction.id.desc()).limit(limit).offset(offset)
        )
    )
    return [_instruction_out(i, await progress(session, i.id)) for i in rows], total


# --- escalation ----------------------------------------------------------------------------------


async def escalate_overdue(session: AsyncSession, *, now: dt.datetime) -> int:
    """Past their deadline, instructions' unacknowledged receipts are marked escalated and one
    ``messaging.instruction_overdue`` event per instruction lists the units. A claim on the
    instruction row (``escalated_at IS NULL``) makes a second run, or a second worker, a no-op."""
    due = list(
        await session.execute(
            select(Instruction.id, Instruction.station_id, Instruction.title)
            .where(Instruction.deadline <= now, Instruction.escalated_at.is_(None))
            .order_by(Instruction.id)
        )
    )
    done = 0
    for instruction_id, station_id, title in due:
        claimed = await session.execute(
            update(Instruction)
            .where(Instruction.id == instruction_id, Instruction.escalated_at.is_(None))
            .values(escalated_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            continue
        unit_ids = list(
            await session.scalars(
                select(Receipt.unit_id)
                .where(Receipt.instruction_id == instruction_id, Receipt.acknowledged_at.is_(None))
                .order_by(Receipt.unit_id)
            )
        )
        if unit_ids:
            await session.execute(
                update(Receipt)
                .where(Receipt.instruction_id == instruction_id, Receipt.acknowledged_at.is_(None))
                .values(escalated_at=now)
            )
            outbox.emit(
                session,
                OVERDUE_TOPIC,
                {
                    "instruction_id": instruction_id,
                    "station_id": station_id,
                    "unit_id": None,
                    "unit_ids": unit_ids,
                    "title": title,
                    "at": now.isoformat(),
                },
            )
        await audit.record(
            session,
            actor_id=None,
            actor_name="system",
            action="messaging.instruction.escalated",
            entity="msg_instruction",
            entity_id=instruction_id,
            changes={"units": len(unit_ids)},
            ip=None,
        )
        await session.commit()
        done += 1
    return done


async def list_escalations(
    session: AsyncSession,
    actor: Principal,
    *,
    instruction_id: int | None,
    unacknowledged_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[schemas.EscalationOut], int]:
    """Escalated receipts of units in the actor's jurisdiction: the duty officer's list, and for a
    liaison officer the units assigned to them."""
    if actor.role not in OFFICER_ROLES:
        raise Forbidden("仅限民警查看")
    where: list[ColumnElement[bool]] = [Receipt.escalated_at.is_not(None), affairs_clause(actor.scope)]
    if instruction_id is not None:
        where.append(Receipt.instruction_id == instruction_id)
    if unacknowledged_only:
        where.append(Receipt.acknowledged_at.is_(None))
    base = (
        select(Receipt, Instruction.title, Unit.name)
        .join(Instruction, Instruction.id == Receipt.instruction_id)
        .join(Unit, Unit.id == Receipt.unit_id)
        .where(*where)
    )
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = await session.execute(
        base.order_by(Receipt.escalated_at.desc(), Receipt.instruction_id.desc(), Unit.id)
        .limit(limit)
        .offset(offset)
    )
    out = []
    for r, title, name in rows:
        if r.escalated_at is None:
            continue
        out.append(
            schemas.EscalationOut(
                instruction_id=r.instruction_id,
                title=title,
                unit_id=r.unit_id,
                unit_name=name,
                station_id=r.station_id,
                deadline=r.deadline,
                escalated_at=r.escalated_at,
                acknowledged_at=r.acknowledged_at,
            )
        )
    return out, total


# --- assistance (协查) ---------------------------------------------------------------------------


async def create_assistance(
    session: AsyncSession, actor: Principal, body: schemas.AssistanceIn
) -> schemas.AssistanceDetail:
    if not can_instruct(actor):
        raise Forbidden("只有派出所民警或分局可以发起协查")
    if bad := [c for c in body.unit_categories if c not in CATEGORY_NAMES]:
        raise field_error("unit_categories", f"未知的单位类别: {bad}", "unknown_category")
    if body.attachment_id is not None:
        attachment = await session.get(Attachment, body.attachment_id)
        if attachment is None or attachment.uploader_id != actor.user_id:
            raise field_error("attachment_id", "附件不存在", "not_found")
    # A bounding box in SQL, the exact circle in Python.
    dlat = body.radius_m / 111_320
    dlng = body.radius_m / (111_320 * max(0.01, math.cos(math.radians(body.lat))))
    query = select(Unit.id, Unit.lat, Unit.lng, Unit.station_id).where(
        affairs_clause(actor.scope),
        Unit.status == "active",
        Unit.lat.between(body.lat - dlat, body.lat + dlat),
        Unit.lng.between(body.lng - dlng, body.lng + dlng),
    )
    if body.unit_categories:
        query = query.where(Unit.category_code.in_(body.unit_categories))
    # Nearest first (then by id): a bureau-wide request belongs to the station of the unit nearest
    # the spot, not to whichever row the database happened to return first.
    located = sorted(
        (haversine_m((body.lat, body.lng), (lat, lng)), uid, sid)
        for uid, lat, lng, sid in await session.execute(query)
        if lat is not None and lng is not None
    )
    units = [(uid, sid) for distance, uid, sid in located if distance <= body.radius_m]
    if not units:
        raise field_error("radius_m", "范围内没有符合条件的单位", "no_recipients")
    station_id = _station_of(actor) or units[0][1]
    channel = Channel(
        kind="assistance",
        name=f"协查：{body.description[:40]}",
        station_id=station_id,
        created_by=actor.user_id,
    )
    session.add(channel)
    await session.flush()
    await session.execute(
        insert(table_of(ChannelUnit)), [{"channel_id": channel.id, "unit_id": u} for u, _ in units]
    )
    await session.execute(
        insert(table_of(ChannelUser)), [{"channel_id": channel.id, "user_id": actor.user_id}]
    )
    assistance = Assistance(
        channel_id=channel.id,
        station_id=station_id,
        sender_id=actor.user_id,
        description=body.description,
        lat=body.lat,
        lng=body.lng,
        radius_m=body.radius_m,
        unit_categories=list(body.unit_categories),
        attachment_id=body.attachment_id,
        recipients=len(units),
        created_at=utcnow(),
    )
    session.add(assistance)
    await session.flush()
    message = await _store_message(
        session, actor, channel, body=body.description, kind="assistance", assistance_id=assistance.id
    )
    await audit.record_action(
        session,
        actor,
        "messaging.assistance.create",
        "msg_assistance",
        assistance.id,
        {"radius_m": body.radius_m, "recipients": len(units), "categories": body.unit_categories},
    )
    await session.commit()
    await _announce_channel(channel, [u for u, _ in units], [actor.user_id], [s for _, s in units])
    await publish_message(session, message)
    return await assistance_detail(session, actor, assistance.id)


async def _assistance_in_scope(session: AsyncSession, actor: Principal, assistance_id: int) -> Assistance:
    row = await session.get(Assistance, assistance_id)
    if row is None:
        raise NotFound("协查不存在")
    await get_channel(session, actor, row.channel_id)
    return row


async def assistance_detail(
    session: AsyncSession, actor: Principal, assistance_id: int
) -> schemas.AssistanceDetail:
    row = await _assistance_in_scope(session, actor, assistance_id)
    replies = await render_messages(
        session,
        list(
            await session.scalars(
                select(Message)
                .where(Message.channel_id == row.channel_id, Message.kind != "assistance")
                .order_by(Message.seq)
            )
        ),
    )
    units = [
        {"id": uid, "name": name, "lat": lat, "lng": lng, "category_code": cat}
        for uid, name, lat, lng, cat in await session.execute(
            select(Unit.id, Unit.name, Unit.lat, Unit.lng, Unit.category_code)
            .join(ChannelUnit, ChannelUnit.unit_id == Unit.id)
            .where(ChannelUnit.channel_id == row.channel_id, affairs_clause(actor.scope))
            .order_by(Unit.id)
        )
    ]
    base = schemas.AssistanceOut.model_validate(row).model_dump()
    return schemas.AssistanceDetail(**base, replies=replies, recipient_units=units)


async def list_assistance(
    session: AsyncSession, actor: Principal, *, status: str | None, limit: int, offset: int
) -> tuple[list[schemas.AssistanceOut], int]:
    where: list[ColumnElement[bool]] = [
        Assistance.channel_id.in_(select(Channel.id).where(channel_clause(actor)))
    ]
    if status:
        where.append(Assistance.status == status)
    total = await session.scalar(select(func.count()).select_from(Assistance).where(*where)) or 0
    rows = await session.scalars(
        select(Assistance).where(*where).order_by(Assistance.id.desc()).limit(limit).offset(offset)
    )
    return [schemas.AssistanceOut.model_validate(a) for a in rows], total


async def reply_assistance(
    session: AsyncSession, actor: Principal, assistance_id: int, body: schemas.ReplyIn
) -> dict[str, Any]:
    row = await _assistance_in_scope(session, actor, assistance_id)
    return await send_message(session, actor, row.channel_id, schemas.MessageIn(body=body.body))


async def close_assistance(
    session: AsyncSession, actor: Principal, assistance_id: int, body: schemas.CloseIn
) -> schemas.AssistanceDetail:
    row = await _assistance_in_scope(session, actor, assistance_id)
    if not can_instruct(actor):
        raise Forbidden("只有民警可以结束协查")
    # Other stations whose units it reaches follow and reply; the request's own station (or its
    # sender, or the bureau) decides when it is over.
    if not (
        actor.scope.is_all or row.sender_id == actor.user_id or row.station_id in actor.scope.station_ids
    ):
        raise Forbidden("只有发起人、所属派出所或分局可以结束协查")
    if row.status == "closed":
        raise Conflict("协查已结束", code="assistance_closed")
    row.status = "closed"
    row.outcome = body.outcome
    row.closed_at = utcnow()
    channel = await session.get(Channel, row.channel_id)
    if channel is None:
        raise NotFound("协查不存在")
    message = await _store_message(
        session, actor, channel, body=f"协查已结束：{body.outcome}", kind="system", assistance_id=row.id
    )
    await audit.record_action(
        session, actor, "messaging.assistance.close", "msg_assistance", row.id, {"outcome": body.outcome}
    )
    await session.commit()
    await publish_message(session, message)
    return await assistance_detail(session, actor, row.id)
