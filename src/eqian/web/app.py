"""The application factory: settings, database, middleware, routers, static assets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from eqian import __version__
from eqian import all_models as _all_models  # noqa: F401 - registers every table so cross-domain foreign keys resolve
from eqian.activities import api as activities_api
from eqian.activities import pages as activities_pages
from eqian.cockpit import api as cockpit_api
from eqian.cockpit import pages as cockpit_pages
from eqian.core import audit, gcpolicy, outbox, ratelimit, scheduler
from eqian.core.config import Settings, get_settings
from eqian.core.db import make_engine, make_sessionmaker
from eqian.environment import api as environment_api
from eqian.environment import pages as environment_pages
from eqian.hazards import api as hazards_api
from eqian.hazards import pages as hazards_pages
from eqian.incidents import api as incidents_api
from eqian.incidents import classifier, intake
from eqian.incidents import pages as incidents_pages
from eqian.mediation import api as mediation_api
from eqian.mediation import pages as mediation_pages
from eqian.messaging import api as messaging_api
from eqian.messaging import direct as messaging_direct
from eqian.messaging import pages as messaging_pages
from eqian.messaging import ws as messaging_ws
from eqian.notifications import api as notifications_api
from eqian.notifications import channels as notifications_channels
from eqian.organizations import api as organizations_api
from eqian.organizations import pages as organizations_pages
from eqian.requests import api as requests_api
from eqian.requests import pages as requests_pages
from eqian.safety_index import api as safety_index_api
from eqian.safety_index import pages as safety_index_pages
from eqian.web import auth_api, errors, handlers, headers, pages, users_api
from eqian.web.templating import PACKAGE_ROOT, make_templates
from eqian.workforce import api as workforce_api
from eqian.workforce import pages as workforce_pages

log = logging.getLogger("eqian.web")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)
    url = settings.resolved_database_url()
    # Safe-method requests read through DEFERRED transactions; writes queue for SQLite's write
    # lock at BEGIN. On PostgreSQL one engine serves both.
    engine = make_engine(url, sqlite_begin="DEFERRED", pool_size=settings.db_pool_size)
    write_engine = make_engine(url) if settings.is_sqlite else engine

    handlers.register_all()
    notifications_channels.configure(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Load the incident classifier's dictionary before the first call arrives, not inside it.
        await asyncio.to_thread(classifier.active_classifier)
        if settings.gc_freeze:
            gcpolicy.settle_startup()
        background = []
        if settings.outbox_poll_seconds > 0:
            factory = make_sessionmaker(write_engine)
            background.append(
                asyncio.create_task(outbox.run_dispatcher(factory, settings.outbox_poll_seconds))
            )
            if jobs := handlers.periodic_jobs():
                background.append(asyncio.create_task(scheduler.run_forever(factory, jobs)))
        # Real time (messaging): the pub/sub broker (Redis when configured) and the /ws hub.
        async with messaging_ws.running(_app, settings.redis_url):
            yield
        await _app.state.intake_batcher.stop()
        await limiter.close()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await engine.dispose()
        await write_engine.dispose()

    app = FastAPI(
        title="e企安·365 API",
        version=__version__,
        description="警企共治平台 — police–enterprise co-governance platform",
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.write_sessionmaker = make_sessionmaker(write_engine)
    app.state.auth_sessionmaker = make_sessionmaker(
        engine if settings.is_sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    app.state.intake_batcher = intake.IntakeBatcher(app.state.write_sessionmaker)
    app.state.templates = make_templates()
    settings.resolved_secret_key()  # create var/secret_key at start-up, not on a first request

    async def record_denied(scope: ratelimit.Scope, status: int) -> None:
        """A 401/403 answered: who (when known), which route, from where, in the audit chain."""
        principal = scope.get("state", {}).get("principal")
        try:
            async with app.state.write_sessionmaker() as session:
                await audit.record(
                    session,
                    actor_id=principal.user_id if principal is not None else None,
                    actor_name=principal.username if principal is not None else "anonymous",
                    action="access.denied",
                    entity="route",
                    entity_id=f"{scope['method']} {scope['path']}"[:64],
                    changes={"status": status, "method": scope["method"], "path": scope["path"][:256]},
                    ip=ratelimit.client_ip(scope),
                )
                await session.commit()
        except (SQLAlchemyError, OSError):
            # The answer has gone out already; a database hiccup must not turn it into a 500.
            log.warning("could not record an access denial", exc_info=True)

    limiter = ratelimit.make_limiter(settings)
    app.state.rate_limiter = limiter
    # Added before the header middleware below, so a 429 also carries the security headers.
    app.add_middleware(
        ratelimit.RateLimitMiddleware, settings=settings, limiter=limiter, on_denied=record_denied
    )

    app.add_middleware(headers.LanguageAndHeaders, default_language=settings.default_language)

    # Outermost, so that it sees the server's own send callable (messaging/direct.py).
    app.add_middleware(messaging_direct.CaptureProtocol)

    @app.get(
        "/healthz",
        tags=["system"],
        responses={
            200: {"description": "服务与数据库正常"},
            503: {
                "description": "数据库不可达：负载均衡应摘除此实例",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "database"],
                            "properties": {"status": {"const": "error"}, "database": {"type": "string"}},
                        }
                    }
                },
            },
        },
    )
    async def healthz() -> JSONResponse:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any driver error means the same thing to a load balancer
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    app.mount("/static", StaticFiles(directory=PACKAGE_ROOT / "web" / "static"), name="static")
    app.include_router(auth_api.router)
    app.include_router(users_api.router)
    app.include_router(organizations_api.router)
    app.include_router(pages.router)
    app.include_router(organizations_pages.router)
    app.include_router(notifications_api.router)
    app.include_router(activities_api.router)
    app.include_router(activities_pages.router)
    app.include_router(hazards_api.inspections)
    app.include_router(hazards_api.hazards)
    app.include_router(hazards_pages.router)
    app.include_router(workforce_api.router)
    app.include_router(workforce_pages.router)
    app.include_router(environment_api.router)
    app.include_router(environment_pages.router)
    app.include_router(incidents_api.router)
    app.include_router(incidents_pages.router)
    app.include_router(mediation_api.router)
    app.include_router(mediation_pages.router)
    app.include_router(requests_api.router)
    app.include_router(requests_pages.router)
    app.include_router(messaging_api.router)
    app.include_router(messaging_pages.router)
    app.include_router(safety_index_api.router)
    app.include_router(safety_index_pages.router)
    app.include_router(cockpit_api.router)
    app.include_router(cockpit_pages.router)
    errors.install(app)
    return app
