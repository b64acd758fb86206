"""JSON API of messaging under /api/v1/messaging, and the WebSocket /ws (see ``ws.py``).

Clients without a WebSocket read history and send through these endpoints; what they send is
published to the WebSocket clients exactly as if it had come over a socket.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from eqian.core.config import Settings
from eqian.core.errors import NotFound, field_error
from eqian.core.permissions import Principal
from eqian.core.schemas import IdPath, IdQuery, Limit, Offset, Page
from eqian.core.storage import storage_from
from eqian.messaging import schemas, service, ws
from eqian.web.deps import get_db, get_principal, get_settings
from eqian.web.routing import Router

router = Router()
api = Router(prefix="/api/v1/messaging", tags=["messaging"])

Db = Annotated[AsyncSession, Depends(get_db)]
Actor = Annotated[Principal, Depends(get_principal)]
Config = Annotated[Settings, Depends(get_settings)]
SeqQuery = Annotated[int | None, Query(ge=0, le=2**31 - 1)]


async def _ensure_registry_channels(request: Request) -> None:
    """Registry channels appear with their stations and service points; checked at most once a
    minute per worker (and by the periodic job)."""
    import time

    state = request.app.state
    last: float = getattr(state, "messaging_channels_checked", 0.0)
    if time.monotonic() - last < 60:
        return
    async with state.write_sessionmaker() as session:
        await service.ensure_channels(session)
    state.messaging_channels_checked = time.monotonic()


# --- channels ------------------------------------------------------------------------------------


@api.get("/channels", response_model=Page[schemas.ChannelOut])
async def list_channels(
    request: Request,
    db: Db,
    actor: Actor,
    kind: Annotated[
        str | None, Query(pattern=r"^(station|category|service_point|group|direct|assistance)$")
    ] = None,
    station_id: IdQuery = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Page[schemas.ChannelOut]:
    """The channels the caller belongs to (units) or oversees (officers)."""
    await _ensure_registry_channels(request)
    items, total = await service.list_channels(
        db, actor, kind=kind, station_id=station_id, limit=limit, offset=offset
    )
    return Page(items=items, total=total)


@api.post("/channels", response_model=schemas.ChannelOut, status_code=201)
async def create_group(body: schemas.GroupIn, db: Db, actor: Actor) -> schemas.ChannelOut:
    """An ad-hoc group of units and users (officers)."""
    return await service.create_group(db, actor, body)


@api.post("/channels/direct", response_model=schemas.ChannelOut)
async def open_direct(body: schemas.DirectIn, db: Db, actor: Actor) -> schemas.ChannelOut:
    """The direct conversation between an officer and a unit (created on first use)."""
    return await service.open_direct(db, actor, body)


@api.get("/channels/{channel_id}", response_model=schemas.ChannelDetail)
async def get_channel(channel_id: IdPath, db: Db, actor: Actor) -> schemas.ChannelDetail:
    return await service.channel_detail(db, actor, channel_id)


@api.get("/channels/{channel_id}/messages")
async def list_messages(
    channel_id: IdPath,
    db: Db,
    actor: Actor,
    after_seq: SeqQuery = None,
    before_seq: SeqQuery = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """``after_seq``: the next messages after it; otherwise the latest (before ``before_seq``)."""
    items, total = await service.list_messages(
        db, actor, channel_id, after_seq=after_seq, before_seq=before_seq, limit=limit
    )
    return {"items": items, "total": total}


@api.post("/channels/{channel_id}/messages", status_code=201)
async def send_message(channel_id: IdPath, body: schemas.MessageIn, db: Db, actor: Actor) -> dict[str, Any]:
    return await service.send_message(db, actor, channel_id, body)


# --- attachments ---------------------------------------------------------------------------------


@api.post("/attachments", response_model=schemas.AttachmentOut, status_code=201)
async def upload_attachment(
    request: Request, db: Db, actor: Actor, settings: Config
) -> schemas.AttachmentOut:
    """Multipart field ``file``: a PNG, JPEG or PDF (type from its bytes), up to the configured size."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise field_error("file", "请以 multipart/form-data 上传文件", "required")
    max_bytes = settings.attachment_max_mb * 1024 * 1024
    form = await request.form(max_part_size=max_bytes + 1)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise field_error("file", "缺少文件", "required")
    data = await upload.read(max_bytes + 1)
    return await service.store_attachment(
        db,
        actor,
        name=upload.filename or "file",
        data=data,
        max_bytes=max_bytes,
        storage=storage_from(settings),
    )


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@api.get(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={
        200: {
            "description": "附件",
            "content": {"image/png": _BINARY, "image/jpeg": _BINARY, "application/pdf": _BINARY},
        }
    },
)
async def get_attachment(attachment_id: IdPath, db: Db, actor: Actor, settings: Config) -> Response:
    row = await service.get_attachment(db, actor, attachment_id)
    try:
        data = await storage_from(settings).get(row.key)
    except FileNotFoundError as exc:
        raise NotFound("附件不存在") from exc
    disposition = "inline" if row.content_type.startswith("image/") else "attachment"
    return Response(
        data,
        media_type=row.content_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="attachment-{row.id}"',
            "Cache-Control": "private, max-age=3600",
        },
    )


# --- instructions --------------------------------------------------------------------------------


@api.post("/instructions", response_model=schemas.InstructionOut, status_code=201)
async def create_instruction(body: schemas.InstructionIn, db: Db, actor: Actor) -> schemas.InstructionOut:
    """An instruction to every member unit of a channel, to acknowledge by the deadline."""
    return await service.create_instruction(db, actor, body)


@api.get("/instructions", response_model=Page[schemas.InstructionOut])
async def list_instructions(
    db: Db, actor: Actor, channel_id: IdQuery = None, limit: Limit = 50, offset: Offset = 0
) -> Page[schemas.InstructionOut]:
    items, total = await service.list_instructions(
        db, actor, channel_id=channel_id, limit=limit, offset=offset
    )
    return Page(items=items, total=total)


@api.get("/instructions/{instruction_id}", response_model=schemas.InstructionOut)
async def get_instruction(instruction_id: IdPath, db: Db, actor: Actor) -> schemas.InstructionOut:
    """The instruction with its progress counts (total / delivered / read / acknowledged / overdue)."""
    return await service.get_instruction(db, actor, instruction_id)


@api.get("/instructions/{instruction_id}/receipts", response_model=Page[schemas.ReceiptOut])
async def list_receipts(
    instruction_id: IdPath,
    db: Db,
    actor: Actor,
    status: schemas.ReceiptStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[schemas.ReceiptOut]:
    items, total = await service.list_receipts(
        db, actor, instruction_id, status=status, limit=limit, offset=offset
    )
    return Page(items=items, total=total)


@api.post("/instructions/{instruction_id}/ack", response_model=schemas.ReceiptOut)
async def acknowledge(
    instruction_id: IdPath, body: schemas.AckIn, db: Db, actor: Actor
) -> schemas.ReceiptOut:
    """Acknowledge for the caller's unit (idempotent: the first acknowledgement stands)."""
    return await service.acknowledge(db, actor, instruction_id, body.text)


@api.post("/instructions/{instruction_id}/read", response_model=schemas.ReceiptOut)
async def mark_read(instruction_id: IdPath, db: Db, actor: Actor) -> schemas.ReceiptOut:
    return await service.mark_read(db, actor, instruction_id)


@api.get("/inbox", response_model=Page[schemas.InboxItem])
async def inbox(
    db: Db, actor: Actor, pending: bool = False, limit: Limit = 50, offset: Offset = 0
) -> Page[schemas.InboxItem]:
    """A unit's instructions, those still to acknowledge first (``pending=true``: only those)."""
    items, total = await service.inbox(db, actor, pending_only=pending, limit=limit, offset=offset)
    return Page(items=items, total=total)


@api.get("/escalations", response_model=Page[schemas.EscalationOut])
async def escalations(
    db: Db,
    actor: Actor,
    instruction_id: IdQuery = None,
    unacknowledged: bool = True,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[schemas.EscalationOut]:
    """Units escalated for not acknowledging by the deadline, in the caller's jurisdiction (the duty
    officer's list; a liaison officer sees the units assigned to them)."""
    items, total = await service.list_escalations(
        db,
        actor,
        instruction_id=instruction_id,
        unacknowledged_only=unacknowledged,
        limit=limit,
        offset=offset,
    )
    return Page(items=items, total=total)


# --- assistance ----------------------------------------------------------------------------------


@api.post("/assistance", response_model=schemas.AssistanceDetail, status_code=201)
async def create_assistance(body: schemas.AssistanceIn, db: Db, actor: Actor) -> schemas.AssistanceDetail:
    """A 协查 request to the units within ``radius_m`` of the point (and of the listed categories)."""
    return await service.create_assistance(db, actor, body)


@api.get("/assistance", response_model=Page[schemas.AssistanceOut])
async def list_assistance(
    db: Db,
    actor: Actor,
    status: Literal["open", "closed"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[schemas.AssistanceOut]:
    items, total = await service.list_assistance(db, actor, status=status, limit=limit, offset=offset)
    return Page(items=items, total=total)


@api.get("/assistance/{assistance_id}", response_model=schemas.AssistanceDetail)
async def get_assistance(assistance_id: IdPath, db: Db, actor: Actor) -> schemas.AssistanceDetail:
    return await service.assistance_detail(db, actor, assistance_id)


@api.post("/assistance/{assistance_id}/replies", status_code=201)
async def reply_assistance(
    assistance_id: IdPath, body: schemas.ReplyIn, db: Db, actor: Actor
) -> dict[str, Any]:
    return await service.reply_assistance(db, actor, assistance_id, body)


@api.post("/assistance/{assistance_id}/close", response_model=schemas.AssistanceDetail)
async def close_assistance(
    assistance_id: IdPath, body: schemas.CloseIn, db: Db, actor: Actor
) -> schemas.AssistanceDetail:
    return await service.close_assistance(db, actor, assistance_id, body)


router.include_router(api)
router.include_router(ws.router)
