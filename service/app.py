"""The application factory: `uvicorn service.app:create_app --factory`."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import text

from service.api import handlers
from service.api.access_log import AccessLog
from service.api.audit import AuditBuffer, AuditTrail
from service.api.dispatch import EndpointRoutes
from service.api.headers import ProtectiveHeaders
from service.api.logs import quiet_server_logs
from service.api.negotiation import check_response_format
from service.api.openapi_docs import component_schemas, document_format, document_security
from service.api.routes import apply, audit, ipt, metadata, operations, resources, search, system, well_known
from service.api.security import TokenVerifier, check_access
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
        # What start-up built (modules, the R4 models' classes, the loaded content) lives as long as the
        # process: kept out of the collector's reach, it is not walked again by every full collection; and
        # the collector runs after 20,000 new container objects rather than 700, so that what a request
        # frees by itself is not traversed first. Collections were 7-10 % of a worker's CPU under load.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)
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

    app.include_router(well_known.router)
    # Everything under /fhir and /ipt is found in the endpoint table, and reached through its entry only:
    # these routes are bound to the entries, not added to the router one by one.
    fhir_routes = routes_of(
        metadata.router,
        system.router,
        audit.router,
        operations.router,
        apply.router,
        search.router,
        resources.build_router(),
    )
    ipt_routes = routes_of(ipt.router)
    checks = (check_response_format,)
    # First among the application's routes: a FHIR request then tries no other.
    app.router.routes[:0] = [
        EndpointRoutes("/fhir", fhir_routes, check_access, checks),
        EndpointRoutes("/ipt", ipt_routes, check_access, checks),
    ]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*app.routes, *fhir_routes, *ipt_routes],
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(component_schemas())
            document_format(schema)
            document_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def routes_of(*routers: APIRouter) -> list[APIRoute]:
    routes = [route for router in routers for route in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes are bound to endpoints, not {route!r}")
    return [route for route in routes if isinstance(route, APIRoute)]
