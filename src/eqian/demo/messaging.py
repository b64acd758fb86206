"""Demo messaging: the district's channels, some conversation, and instructions with receipts.

Every station channel and a few category channels get a couple of months of notices from the
station's officers and three instructions; riskier units acknowledge less often and more slowly,
so the acknowledgement rate and latency give the safety index something to find. Past deadlines
are escalated as the job would have done. Everything comes from one ``random.Random(seed)``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.db import table_of
from eqian.demo.risk import hidden_risk
from eqian.messaging.models import Channel, Instruction, Message, Receipt
from eqian.messaging.service import ensure_channels, member_clause
from eqian.organizations.models import Unit

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
PAGE = 3000

NOTICES = (
    "各单位注意：今晚有强对流天气，请检查仓库门窗和临时用电。",
    "近期电信诈骗高发，请提醒员工不要点击陌生链接、不要向陌生账户转账。",
    "本周五下午三点在派出所召开警企恳谈会，请安保负责人准时参加。",
    "请各单位核对新入职员工居住登记情况，发现未登记的及时上报。",
    "春节前后是盗窃高发期，请加强夜间巡逻和监控值守。",
    "消防通道严禁堆放杂物，本周将开展联合检查。",
    "收到，我们马上落实。",
    "请问居住证办理需要带哪些材料？",
    "已安排专人负责，每日巡查两次。",
)
INSTRUCTIONS = (
    ("做好居住证登记", "请于截止时间前完成本单位新入职员工的居住登记，并回复完成人数。"),
    ("春季安全检查", "请对照自查清单完成消防、用电、通道检查，发现隐患立即整改。"),
    ("防范电信网络诈骗宣传", "请组织员工观看反诈宣传视频，并在企业群内转发反诈提示。"),
    ("暴雨防汛准备", "请检查排水设施、转移低洼处物资，确保值班人员在岗。"),
    ("节前安全大检查", "请开展节前安全大检查，重点检查三合一场所和电动车充电。"),
)


def _ack_delay(rng: random.Random, risk: float) -> dt.timedelta | None:
    """How long a unit of this risk takes to acknowledge, or None when it never does."""
    if rng.random() > 0.98 - 0.55 * risk:
        return None
    hours = rng.expovariate(1 / (0.5 + 30 * risk))
    return dt.timedelta(hours=hours)


async def seed_messaging(session: AsyncSession, *, seed: int, today: dt.date) -> dict[str, int]:
    """Channels, messages, instructions and receipts for the units already there; commits."""
    await ensure_channels(session)
    rng = random.Random(f"messaging:{seed}")
    now = dt.datetime.combine(today, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
    officers: dict[int, list[int]] = defaultdict(list)
    security: dict[int, int] = {}
    for uid, role, station_id, unit_id in await session.execute(
        select(User.id, User.role, User.station_id, User.unit_id).order_by(User.id)
    ):
        if role == Role.STATION_OFFICER.value and station_id is not None:
            officers[station_id].append(uid)
        elif role == Role.UNIT_SECURITY.value and unit_id is not None:
            security.setdefault(unit_id, uid)
    channels = list(
        await session.scalars(
            select(Channel).where(Channel.kind.in_(("station", "category"))).order_by(Channel.id)
        )
    )
    chosen = [c for c in channels if c.kind == "station"]
    chosen += [c for c in channels if c.kind == "category" and c.category_code in ("garment", "market")]
    all_channels = await session.scalar(select(func.count()).select_from(Channel)) or 0
    counts = {"channels": all_channels, "messages": 0, "instructions": 0, "receipts": 0, "acknowledged": 0}
    receipts: list[dict[str, Any]] = []
    for channel in chosen:
        units = list(await session.execute(select(Unit.id, Unit.station_id).where(member_clause(channel))))
        if not units:
            continue
        senders: list[int | None] = [*officers.get(channel.station_id or 0, [])] or [None]
        events: list[tuple[dt.datetime, str, int | None, tuple[str, str] | None]] = []
        for _ in range(rng.randrange(6, 14)):
            at = now - dt.timedelta(days=rng.uniform(0.2, 60))
            events.append((at, rng.choice(NOTICES), rng.choice(senders), None))
        for n in range(3):
            at = now - dt.timedelta(days=[45, 20, 0.1][n] + rng.uniform(0, 2), hours=rng.uniform(0, 4))
            events.append((at, "", rng.choice(senders), rng.choice(INSTRUCTIONS)))
        events.sort(key=lambda e: e[0])
        seq = channel.last_seq
        for at, body, sender, instruction in events:
            seq += 1
            message = Message(
                channel_id=channel.id,
                seq=seq,
                kind="text",
                sender_id=sender,
                body=body,
                mentions=[],
                created_at=at,
            )
            session.add(message)
            if instruction is None:
                await session.flush()
                counts["messages"] += 1
                continue
            title, text = instruction
            deadline = at + dt.timedelta(days=2)
            row = Instruction(
                channel_id=channel.id,
                station_id=channel.station_id,
                sender_id=sender,
                title=title,
                body=text,
                deadline=deadline,
                total=len(units),
                created_at=at,
                escalated_at=deadline if deadline < now else None,
            )
            session.add(row)
            await session.flush()
            message.kind, message.body, message.instruction_id = "instruction", text, row.id
            await session.flush()
            row.message_id = message.id
            counts["messages"] += 1
            counts["instructions"] += 1
            for unit_id, station_id in units:
                risk = hidden_risk(seed, unit_id)
                delay = _ack_delay(rng, risk)
                acked = at + delay if delay is not None and at + delay < now else None
                delivered = at + dt.timedelta(seconds=rng.uniform(1, 60)) if rng.random() < 0.97 else None
                if acked is not None:
                    delivered = min(delivered or acked, acked)
                read = acked or (
                    delivered + dt.timedelta(minutes=5) if delivered and rng.random() < 0.5 else None
                )
                receipts.append(
                    {
                        "instruction_id": row.id,
                        "unit_id": unit_id,
                        "station_id": station_id,
                        "deadline": deadline,
                        "delivered_at": delivered,
                        "read_at": read,
                        "acknowledged_at": acked,
                        "ack_user_id": security.get(unit_id) if acked else None,
                        "ack_text": rng.choice(("收到", "已落实", "收到，马上安排", None)) if acked else None,
                        "ack_latency_seconds": (acked - at).total_seconds() if acked else None,
                        "escalated_at": deadline
                        if deadline < now and (acked is None or acked > deadline)
                        else None,
                    }
                )
                counts["receipts"] += 1
                counts["acknowledged"] += acked is not None
        await session.execute(update(Channel).where(Channel.id == channel.id).values(last_seq=seq))
    for start in range(0, len(receipts), PAGE):
        await session.execute(insert(table_of(Receipt)), receipts[start : start + PAGE])
    await session.commit()
    return counts
