"""HTML pages of workforce: the unit picker and a unit's workforce page (compliance, workers with
masked identifiers, hire form, departures, residence updates and the HR-sheet upload).

They call the same service functions as the JSON API; this module only parses and lays out.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from eqian.core import i18n
from eqian.core.accounts import Role
from eqian.core.errors import AppError, NotFound
from eqian.core.permissions import REVEAL_ROLES, Principal
from eqian.core.schemas import IdPath
from eqian.web.deps import get_db, get_principal
from eqian.web.pages import render
from eqian.web.routing import Router
from eqian.workforce import schemas, service, transfer

router = Router(include_in_schema=False)
PAGE_SIZE = 100
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
NOTICES = {
    "hired": "已登记入职",
    "departed": "已登记离职",
    "residence": "已更新居住登记",
    "imported": "花名册已导入",
}


@router.get("/workforce", response_class=HTMLResponse)
async def index(
    request: Request,
    q: Annotated[str | None, Query(max_length=64)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    if actor.role is Role.UNIT_SECURITY and len(actor.scope.unit_ids) == 1:
        return RedirectResponse(f"/workforce/units/{next(iter(actor.scope.unit_ids))}", status_code=303)
    units = await service.units_for_picker(db, actor, q)
    start, end = service.default_period(service.local_today())
    stations = await service.compliance(db, actor, service.ComplianceQuery(start, end), by="station")
    return render(
        request,
        "workforce/index.html",
        {"nav": "workforce", "units": units, "q": q or "", "stations": stations},
    )


async def _unit_page(
    request: Request,
    db: AsyncSession,
    actor: Principal,
    unit_id: IdPath,
    *,
    show: str = "active",
    offset: int = 0,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    import_errors: list[transfer.RowError] | None = None,
    import_message: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    unit = await service.load_unit(db, actor, unit_id)
    start, end = service.default_period(service.local_today())
    report = await service.compliance(db, actor, service.ComplianceQuery(start, end, unit_id=unit_id))
    active = True if show == "active" else None
    workers, total = await service.list_workers(
        db, actor, service.WorkerFilters(unit_id=unit_id, active=active, limit=PAGE_SIZE, offset=offset)
    )
    today = service.local_today()
    return render(
        request,
        "workforce/unit.html",
        {
            "nav": "workforce",
            "unit": unit,
            "report": report,
            "workers": workers,
            "total": total,
            "show": show,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "today": today,
            "soon": today + dt.timedelta(days=30),
            "can_write": actor.has_role(*service.WRITE_ROLES),
            "can_reveal": actor.has_role(*REVEAL_ROLES),
            "form": form or {"hired_on": today.isoformat()},
            "errors": errors or {},
            "import_errors": import_errors or [],
            "import_message": import_message,
            "notice": i18n.gettext(NOTICES[notice]) if notice in NOTICES else None,
        },
        status_code=status_code,
    )


@router.get("/workforce/units/{unit_id}", response_class=HTMLResponse)
async def unit_page(
    request: Request,
    unit_id: IdPath,
    show: Annotated[str, Query(pattern="^(active|all)$")] = "active",
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
    saved: Annotated[str | None, Query(max_length=16)] = None,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    return await _unit_page(request, db, actor, unit_id, show=show, offset=offset, notice=saved)


def _form(raw: Any) -> dict[str, str]:
    return {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}


@router.post("/workforce/units/{unit_id}/hires", response_class=HTMLResponse)
async def hire_submit(
    request: Request,
    unit_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    await service.load_unit(db, actor, unit_id)
    form = _form(await request.form())
    try:
        data = schemas.HireIn.model_validate({**form, "unit_id": unit_id})
    except ValidationError as exc:
        errors = {
            str(e["loc"][0]) if e["loc"] else "_form": str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        }
        return await _unit_page(request, db, actor, unit_id, form=form, errors=errors, status_code=422)
    try:
        await service.hire(db, actor, data)
    except AppError as exc:
        await db.rollback()
        if exc.status_code in (403, 404):
            raise
        field = exc.details[0].get("field", "_form") if exc.details else "_form"
        return await _unit_page(
            request,
            db,
            actor,
            unit_id,
            form=form,
            errors={str(field): exc.message},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/workforce/units/{unit_id}?saved=hired", status_code=303)


@router.post("/workforce/units/{unit_id}/workers/{employment_id}/departure")
async def departure_submit(
    request: Request,
    unit_id: IdPath,
    employment_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    worker = await service.get_worker(db, actor, employment_id)
    if worker.unit_id != unit_id:
        raise NotFound("员工记录不存在")
    form = _form(await request.form())
    try:
        data = schemas.DepartureIn.model_validate({"left_on": form.get("left_on") or service.local_today()})
    except ValidationError:
        return await _unit_page(request, db, actor, unit_id, errors={"left_on": "日期无效"}, status_code=422)
    await service.depart(db, actor, employment_id, data)
    return RedirectResponse(f"/workforce/units/{unit_id}?saved=departed", status_code=303)


@router.post("/workforce/units/{unit_id}/persons/{person_id}/residence")
async def residence_submit(
    request: Request,
    unit_id: IdPath,
    person_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    await service.load_unit(db, actor, unit_id)
    form = {k: v for k, v in _form(await request.form()).items() if v != ""}
    try:
        data = schemas.ResidenceIn.model_validate(form)
        await service.update_residence(db, actor, person_id, data)
    except ValidationError:
        return await _unit_page(
            request, db, actor, unit_id, errors={"residence": "登记信息无效"}, status_code=422
        )
    except AppError as exc:
        await db.rollback()
        if exc.status_code in (403, 404):
            raise
        return await _unit_page(
            request, db, actor, unit_id, errors={"residence": exc.message}, status_code=422
        )
    return RedirectResponse(f"/workforce/units/{unit_id}?saved=residence", status_code=303)


@router.post("/workforce/units/{unit_id}/import", response_class=HTMLResponse)
async def import_submit(
    request: Request,
    unit_id: IdPath,
    db: AsyncSession = Depends(get_db),
    actor: Principal = Depends(get_principal),
) -> Response:
    await service.load_unit(db, actor, unit_id)
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        return await _unit_page(request, db, actor, unit_id, import_message="请选择文件", status_code=422)
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return await _unit_page(
            request, db, actor, unit_id, import_message="文件过大（最大 10 MB）", status_code=422
        )
    suffix = Path(upload.filename or "").suffix.lower()[:8]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            await transfer.import_hires(db, actor, unit_id, path)
        except transfer.ImportFailed as exc:
            await db.rollback()
            return await _unit_page(
                request,
                db,
                actor,
                unit_id,
                import_errors=exc.errors,
                import_message=exc.message,
                status_code=422,
            )
    return RedirectResponse(f"/workforce/units/{unit_id}?saved=imported", status_code=303)
