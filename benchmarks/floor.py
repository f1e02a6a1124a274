"""The floor of the per-request benchmark (`benchmarks.requests`): the least a web app on the same stack does
for the same requests, to compare the service with.

`create_app` is FastAPI and asyncpg over one table, `questionnaire_response (id text primary key, subject
text, content jsonb)` with an index on `subject`; no validation, no authorization, no audit, no history:

- `POST /QuestionnaireResponse` gives the body a new id, inserts it and answers it with 201;
- `GET /QuestionnaireResponse/{id}` answers the stored JSON;
- `GET /QuestionnaireResponse?subject=Patient/x` answers a minimal searchset Bundle of the matching rows
  (the first 20, as the service's default page holds);
- `GET /health` answers `{"status": "ok"}` after a `SELECT 1`.

`create_health_app` is bare Starlette with the same `/health` and nothing else, the floor of the service's
`/health`.

Both read the database from `DATABASE_URL` (a libpq URL) and serve under uvicorn:
`uvicorn benchmarks.floor:create_app --factory`. The benchmark creates the table (`SCHEMA`) beforehand.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

FHIR_JSON = "application/fhir+json"
# The service's pool holds up to 10 connections and 10 more under load, per process.
POOL_SIZE = 20
SCHEMA = (
    "CREATE TABLE questionnaire_response (id text PRIMARY KEY, subject text, content jsonb NOT NULL)",
    "CREATE INDEX ix_questionnaire_response_subject ON questionnaire_response (subject)",
)
INSERT = "INSERT INTO questionnaire_response (id, subject, content) VALUES ($1, $2, $3::jsonb)"
READ = "SELECT content::text FROM questionnaire_response WHERE id = $1"
SEARCH = "SELECT id, content::text FROM questionnaire_response WHERE subject = $1 ORDER BY id LIMIT 20"


@asynccontextmanager
async def _pool(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=POOL_SIZE)
    try:
        yield
    finally:
        await app.state.pool.close()


async def _health(request: Request) -> JSONResponse:
    await request.app.state.pool.fetchval("SELECT 1")
    return JSONResponse({"status": "ok"})


def create_app() -> FastAPI:
    app = FastAPI(lifespan=_pool, openapi_url=None, docs_url=None, redoc_url=None)
    app.add_api_route("/health", _health, methods=["GET"])

    @app.post("/QuestionnaireResponse")
    async def create(request: Request) -> Response:
        resource: dict[str, Any] = orjson.loads(await request.body())
        resource_id = str(uuid.uuid4())
        resource["id"] = resource_id
        body = orjson.dumps(resource)
        subject = resource.get("subject", {}).get("reference")
        await request.app.state.pool.execute(INSERT, resource_id, subject, body.decode())
        location = f"{request.base_url}QuestionnaireResponse/{resource_id}"
        return Response(body, status_code=201, media_type=FHIR_JSON, headers={"Location": location})

    @app.get("/QuestionnaireResponse/{resource_id}")
    async def read(resource_id: str, request: Request) -> Response:
        content: str | None = await request.app.state.pool.fetchval(READ, resource_id)
        if content is None:
            return Response(status_code=404)
        return Response(content, media_type=FHIR_JSON)

    @app.get("/QuestionnaireResponse")
    async def search(subject: str, request: Request) -> Response:
        rows = await request.app.state.pool.fetch(SEARCH, subject)
        base = f"{request.base_url}QuestionnaireResponse/"
        entries = ",".join(
            f'{{"fullUrl":"{base}{row[0]}","resource":{row[1]},"search":{{"mode":"match"}}}}' for row in rows
        )
        self_link = orjson.dumps(str(request.url)).decode()
        body = (
            f'{{"resourceType":"Bundle","type":"searchset","total":{len(rows)},'
            f'"link":[{{"relation":"self","url":{self_link}}}],"entry":[{entries}]}}'
        )
        return Response(body, media_type=FHIR_JSON)

    return app


def create_health_app() -> Starlette:
    return Starlette(routes=[Route("/health", _health)], lifespan=_pool)
