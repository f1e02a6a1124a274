"""The application factory: `uvicorn service.app:create_app --factory`."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from service.api import handlers
from service.api.access_log import AccessLog
from service.api.audit import AuditBuffer, AuditTrail
from service.api.dispatch import grouped_by_first_segment
from service.api.headers import ProtectiveHeaders
from service.api.logs import quiet_server_logs
from service.api.negotiation import check_response_format
from service.api.openapi_docs import component_schemas, document_security
from service.api.routes import apply, audit, ipt, metadata, operations, resources, search, system, well_known
from service.api.security import TokenVerifier, require_fhir_access, require_ipt_access
from service.config import Settings, get_settings
from service.interactions.content import load_ipt_content
from service.interactions.rules import install_standard_write_pipeline
from service.storage.db import create_engine, ensure_schema_at_head, start_embedded_postgres, upgrade_to_head
from service.storage.reading import reading

log = logging.getLogger(__name__)
_PING = text("SELECT 1")

DESCRIPTION = """
FHIR R4 (4.0.1) service for Interpersonal Psychotherapy (IPT): treatment plans as `CarePlan` with `Goal`,
`Condition` and `CareTeam`; IPT worksheets as `Questionnaire`; a client's answers as `QuestionnaireResponse`.

Bodies are FHIR JSON (`application/fhir+json`; `application/json` is accepted). Every error is an
`OperationOutcome` whose `issue.expression` names the element at fault.

Every route but the CapabilityStatement needs a bearer token: **Authorize** with one minted by
`ipt-fhir token --scope 'system/*.cruds'`. The examples refer to `Patient/example`: create it first with
`PUT /fhir/Patient/example` and the Patient example, then every example is accepted as shown.
"""


async def database_url(settings: Settings) -> str:
    """The configured PostgreSQL, or the embedded one (started and migrated on the spot)."""
    if settings.database_url:
        return settings.database_url
    url = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
    await asyncio.to_thread(upgrade_to_head, url)
    return url


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(await database_url(settings), pool_size=settings.db_pool_size)
        await ensure_schema_at_head(engine)
        if settings.load_content_on_start:
            report = await load_ipt_content(engine)
            log.info("IPT content: %s", report.summary())
        app.state.engine = engine
        audit_buffer = app.state.audit_buffer = AuditBuffer(
            engine,
            interval=settings.audit_flush_interval,
            batch=settings.audit_flush_events,
            capacity=settings.audit_buffer_max_events,
        )
        audit_buffer.start()
        try:
            yield
        finally:
            # Before the engine goes: a graceful shutdown loses no AuditEvent.
            await audit_buffer.close()
            await engine.dispose()

    app = FastAPIOffline(
        title="ipt-fhir",
        version=version("ipt-fhir"),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_standard_write_pipeline()
    app.state.token_verifier = TokenVerifier(settings)
    handlers.install(app)
    quiet_server_logs()
    # The last added runs outermost: the log line times the request with its audit write included, and the
    # audit trail sees the 500 of an unexpected error.
    app.add_middleware(handlers.ServerErrors)
    app.add_middleware(AuditTrail)
    app.add_middleware(AccessLog)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Exist", "Prefer"],
            expose_headers=["ETag", "Location", "Last-Modified"],
        )
    app.add_middleware(ProtectiveHeaders)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", tags=["System"], summary="Liveness and database reachability", operation_id="health")
    async def health(request: Request) -> JSONResponse:
        async with reading(request.app.state.engine) as connection:
            await connection.execute(_PING)
        return JSONResponse({"status": "ok"})

    # Every request is matched against the routes in order, one by one, and the per-type FHIR routes are
    # two hundred of them: everything else comes first. Only the FHIR routes overlap one another.
    public = APIRouter(prefix="/fhir", dependencies=[Depends(check_response_format)])
    public.include_router(metadata.router)
    app.include_router(public)
    app.include_router(well_known.router)

    # Deny by default: every other FHIR route needs a bearer token whose scopes allow the request.
    guarded = [Depends(require_fhir_access), Depends(check_response_format)]
    # The Bundle endpoint is `[base]` itself, so it is included with the prefix rather than nested.
    app.include_router(system.router, prefix="/fhir", dependencies=guarded)
    app.include_router(ipt.router, dependencies=[Depends(require_ipt_access), Depends(check_response_format)])
    # Operations and search come before the instance routes, whose `{resource_id}` would also match
    # `$validate` or `_search`; each type's routes are then grouped, so a request is matched against its
    # own type's routes only, one level below the application's.
    routers = (audit.router, operations.router, apply.router, search.router, resources.build_router())
    for group in grouped_by_first_segment("/fhir", routers):
        app.include_router(group, prefix="/fhir", dependencies=guarded)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(component_schemas())
            document_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
