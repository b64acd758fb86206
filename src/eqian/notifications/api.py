"""The signed-in user's notifications."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, Limit, Offset, Page
from eqian.notifications import service
from eqian.notifications.schemas import DeliveryOut, NotificationOut
from eqian.web.deps import get_db, get_principal
from eqian.web.routing import Router

router = Router(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=Page[NotificationOut])
async def list_notifications(
    unread: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Page[NotificationOut]:
    items, total = await service.inbox(db, actor, unread_only=unread, limit=limit, offset=offset)
    return Page(items=items, total=total)


@router.get("/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    status: Literal["sent", "pending", "failed"] = "sent",
    limit: Limit = 50,
    offset: Offset = 0,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Page[DeliveryOut]:
    """DingTalk and SMS messages: sent, still being retried, or given up (bureau only)."""
    items, total = await service.deliveries(db, actor, status=status, limit=limit, offset=offset)
    return Page(items=items, total=total)


@router.post("/{notification_id}/read", response_model=NotificationOut)
async def read_notification(
    notification_id: IdPath, db: AsyncSession = Depends(get_db), actor: Principal = Depends(get_principal)
) -> NotificationOut:
    return await service.mark_read(db, actor, notification_id)
