"""Pages of messaging (民芯对讲): the officer console and the unit console.

Both are shells rendered here; `static/js/messaging.js` fills them from the JSON API
(`/api/v1/messaging/...`, cookie session + `X-CSRF-Token` on writes) and keeps them live over `/ws`
(cookie-authenticated, resumed with per-channel cursors). The one read this module answers itself is
the map of an assistance request: the units in the caller's scope around a point.
"""

from __future__ import annotations

import json
import math
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.accounts import Role, User
from eqian.core.geo import EARTH_RADIUS_M, haversine_m
from eqian.core.i18n import gettext
from eqian.core.permissions import Principal
from eqian.messaging import service as msg_service
from eqian.organizations import service as org_service
from eqian.organizations.models import LiaisonAssignment, Unit, UnitCategory
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router

router = Router(include_in_schema=False, tags=["messaging-pages"])

UNIT_ROLES = frozenset({Role.UNIT_SECURITY})
MAP_LIMIT = 400
MAX_RADIUS_M = 20_000


def _client_strings() -> dict[str, str]:
    """Text the script shows, translated here so that the catalogs stay the single source."""
    return {
        "connecting": gettext("正在连接…"),
        "live": gettext("实时连接"),
        "reconnecting": gettext("连接中断，正在重连…"),
        "offline": gettext("无法连接，请刷新页面"),
        "session_ended": gettext("登录已失效，请重新登录"),
        "no_channels": gettext("暂无会话"),
        "pick_channel": gettext("请选择左侧的会话"),
        "no_messages": gettext("暂无消息"),
        "load_more": gettext("加载更早的消息"),
        "reply": gettext("回复"),
        "replying_to": gettext("回复："),
        "cancel": gettext("取消"),
        "send_failed": gettext("发送失败："),
        "attachment": gettext("附件"),
        "instruction": gettext("指令"),
        "deadline": gettext("截止"),
        "acknowledged": gettext("已确认"),
        "not_acknowledged": gettext("未确认"),
        "delivered": gettext("已送达"),
        "read": gettext("已读"),
        "overdue": gettext("已逾期"),
        "ack": gettext("确认"),
        "ack_done": gettext("已确认，感谢配合"),
        "ack_text_placeholder": gettext("回复内容（可不填）"),
        "inbox_empty": gettext("没有待确认的指令"),
        "board_empty": gettext("还没有发布指令"),
        "board_pick": gettext("选择一条指令查看确认情况"),
        "pending_units": gettext("未确认的单位"),
        "all_acked": gettext("全部单位已确认"),
        "unit": gettext("单位"),
        "status": gettext("状态"),
        "time": gettext("时间"),
        "reply_text": gettext("回复内容"),
        "assist_title": gettext("协查"),
        "assist_empty": gettext("暂无协查"),
        "assist_pick": gettext("选择一条协查查看详情"),
        "assist_open": gettext("进行中"),
        "assist_closed": gettext("已结束"),
        "assist_replies": gettext("单位回复"),
        "assist_no_replies": gettext("还没有单位回复"),
        "assist_close": gettext("结束协查"),
        "assist_outcome": gettext("处理结果"),
        "assist_reply": gettext("回复协查"),
        "assist_units": gettext("范围内单位"),
        "radius": gettext("半径"),
        "meters": gettext("米"),
        "sent": gettext("已发送"),
        "error": gettext("出错了："),
        "new_instruction": gettext("新指令"),
        "new_assist": gettext("新协查"),
        "new_reply": gettext("新回复"),
        "you": gettext("我"),
        "channel_station": gettext("全所"),
        "channel_category": gettext("行业"),
        "channel_service_point": gettext("服务点"),
        "channel_group": gettext("群组"),
        "channel_direct": gettext("私聊"),
        "channel_assistance": gettext("协查"),
        "broadcast_only": gettext("这是派出所的广播频道，单位不能在此发言；如需联系民警，请在左侧发起私聊。"),
        "search_none": gettext("没有找到单位"),
        "open_direct": gettext("发起私聊"),
        "escalations_empty": gettext("没有逾期未确认的单位"),
    }


def _console_context(actor: Principal) -> dict[str, object]:
    is_unit = actor.role in UNIT_ROLES
    config = {
        "user_id": actor.user_id,
        "role": str(actor.role),
        "console": "unit" if is_unit else "officer",
        # What the page offers; the API decides in the end (messaging.service).
        "can_command": msg_service.can_instruct(actor),
        "can_post_registry": actor.role in msg_service.OFFICER_ROLES,
        "api": "/api/v1/messaging",
        "ws": "/ws",
        "strings": _client_strings(),
    }
    return {
        "nav": "messaging",
        "console": config["console"],
        "can_command": config["can_command"],
        "is_officer": config["can_post_registry"],
        # Rendered into a JSON <script> block: every "<" is escaped so no text can close the element.
        "config_json": json.dumps(config, ensure_ascii=False).replace("<", "\\u003c"),
    }


@router.get("/messaging", response_class=HTMLResponse)
async def console(
    request: Request,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    context = _console_context(actor)
    if actor.role in UNIT_ROLES:
        return render(request, "messaging/unit.html", {**context, "officers": await _officers_of(db, actor)})
    categories = await org_service.list_categories(db)
    stations = await org_service.list_stations(db, actor)
    center = next(
        ({"lat": s.lat, "lng": s.lng} for s in stations if s.lat is not None and s.lng is not None), None
    )
    return render(request, "messaging/officer.html", {**context, "categories": categories, "center": center})


async def _officers_of(db: AsyncSession, actor: Principal) -> list[dict[str, object]]:
    """The officers a unit's staff may open a direct conversation with: the station's officers and
    the unit's liaison officer (the same rule messaging.service applies when the channel opens)."""
    unit_ids = sorted(actor.scope.unit_ids)
    if not unit_ids:
        return []
    station_ids = select(Unit.station_id).where(Unit.id.in_(unit_ids))
    liaison_ids = select(LiaisonAssignment.officer_id).where(LiaisonAssignment.unit_id.in_(unit_ids))
    rows = await db.execute(
        select(User.id, User.display_name, User.role)
        .where(
            User.is_active.is_(True),
            or_(
                (User.role == Role.STATION_OFFICER.value) & User.station_id.in_(station_ids),
                (User.role == Role.LIAISON_OFFICER.value) & User.id.in_(liaison_ids),
            ),
        )
        .order_by(User.role, User.display_name, User.id)
        .limit(50)
    )
    return [{"id": uid, "name": name, "role": role} for uid, name, role in rows.all()]


def _float(value: str | None, low: float, high: float) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if low <= number <= high else None


@router.get("/messaging/units-near")
async def units_near(
    lat: Annotated[str | None, Query(max_length=24)] = None,
    lng: Annotated[str | None, Query(max_length=24)] = None,
    radius_m: Annotated[str | None, Query(max_length=12)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> JSONResponse:
    """Units in the caller's scope within twice the radius of a point, for the assistance map.

    Each item says whether it lies inside the radius (the units that receive the request, before the
    category filter the server applies)."""
    plat, plng = _float(lat, -90, 90), _float(lng, -180, 180)
    radius = _float(radius_m, 1, MAX_RADIUS_M)
    if plat is None or plng is None or radius is None:
        details = [
            {"field": name, "message": gettext("请填写有效的数值"), "code": "invalid"}
            for name, value in (("lat", plat), ("lng", plng), ("radius_m", radius))
            if value is None
        ]
        body = {"error": {"code": "validation_failed", "message": gettext("输入有误"), "details": details}}
        return JSONResponse(body, status_code=422)
    reach = 2 * radius
    dlat = math.degrees(reach / EARTH_RADIUS_M)
    dlng = math.degrees(reach / (EARTH_RADIUS_M * max(math.cos(math.radians(plat)), 0.01)))
    rows = await db.execute(
        select(Unit.id, Unit.name, Unit.category_code, UnitCategory.name_zh, Unit.lat, Unit.lng)
        .join(UnitCategory, UnitCategory.code == Unit.category_code)
        .where(
            org_service.affairs_clause(actor.scope),
            Unit.status == "active",  # as the server's choice of recipients
            Unit.lat.between(plat - dlat, plat + dlat),
            Unit.lng.between(plng - dlng, plng + dlng),
        )
        .order_by(Unit.id)
        .limit(MAP_LIMIT * 4)
    )
    items = []
    for uid, name, code, category_name, ulat, ulng in rows.all():
        if ulat is None or ulng is None:
            continue
        distance = haversine_m((plat, plng), (ulat, ulng))
        if distance <= reach:
            items.append(
                {
                    "id": uid,
                    "name": name,
                    "category": code,
                    "category_name": gettext(category_name),
                    "lat": ulat,
                    "lng": ulng,
                    "distance_m": round(distance),
                    "inside": distance <= radius,
                }
            )
    items.sort(key=lambda item: item["distance_m"])  # type: ignore[arg-type, return-value]
    items = items[:MAP_LIMIT]
    return JSONResponse({"items": items, "total": len(items), "radius_m": radius, "lat": plat, "lng": plng})
