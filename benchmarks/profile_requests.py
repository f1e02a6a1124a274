"""Where a request's CPU goes: create, read and search of a QuestionnaireResponse, profiled in-process.

`python -m benchmarks.profile_requests` (`make profile`) serves the application in this process over
httpx's ASGI transport, on a fresh database of the embedded PostgreSQL, and profiles each path with
cProfile. Each function's own time is charged to the part of the service (or library) its module belongs
to, so the table says what share of a request each part costs; the figures of `make bench-requests` say how
much the whole costs. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import httpx

from benchmarks.harness import auth_headers, fresh_database
from benchmarks.requests import QUESTIONNAIRE, inventory_response
from service.app import create_app
from service.config import Settings

# The first matching fragment of a function's file name names its part; order matters.
PARTS = (
    ("service/api/security", "auth (token, scopes)"),
    ("service/fhir/access", "auth (token, scopes)"),
    ("service/fhir/authorization", "auth (token, scopes)"),
    ("service/fhir/scopes", "auth (token, scopes)"),
    ("jwt/", "auth (token, scopes)"),
    ("cachetools", "auth (token, scopes)"),
    ("service/api/dispatch", "dispatch (endpoint table)"),
    ("service/fhir/endpoints", "dispatch (endpoint table)"),
    ("service/api/audit", "audit"),
    ("service/fhir/audit", "audit"),
    ("service/interactions/audit", "audit"),
    ("service/fhir/validation", "validation (FHIR rules, worksheet)"),
    ("fhir/resources", "validation (FHIR rules, worksheet)"),
    ("fhir_core", "validation (FHIR rules, worksheet)"),
    ("pydantic", "validation (FHIR rules, worksheet)"),
    ("service/fhir/bindings", "validation (FHIR rules, worksheet)"),
    ("service/fhir/parsing", "validation (FHIR rules, worksheet)"),
    ("service/storage/indexing", "search index extraction"),
    ("service/fhir/extraction", "search index extraction"),
    ("service/storage", "storage (statements, rows)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("asyncpg", "asyncpg (driver)"),
    ("greenlet", "SQLAlchemy"),
    ("service/fhir/search", "search parsing"),
    ("service/fhir/bundle", "Bundle assembly"),
    ("service/", "service, other"),
    ("mappings/", "service, other"),
    ("fastapi/dependencies", "FastAPI dependencies"),
    ("fastapi/routing", "FastAPI routing"),
    ("starlette/routing", "FastAPI routing"),
    ("fastapi", "FastAPI, other"),
    ("starlette", "Starlette"),
    ("greenlet", "SQLAlchemy"),
    ("orjson", "JSON (orjson)"),
    ("httpx", "test client (httpx)"),
    ("h11", "test client (httpx)"),
    ("asyncio", "event loop"),
    ("select", "event loop"),
    ("_contextvars", "event loop"),
)


def part_of(filename: str) -> str:
    for fragment, part in PARTS:
        if fragment in filename:
            return part
    return "Python runtime, other"


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def profile(
    name: str, request: Request, http: httpx.AsyncClient, count: int, *, verbose: bool = False
) -> None:
    for _ in range(max(20, count // 10)):  # warm the caches and the pool
        await request(http)
    started = time.process_time()
    for _ in range(count):
        await request(http)
    plain = (time.process_time() - started) / count * 1000
    # CPU time, not wall time: waiting for PostgreSQL is not the service's cost.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(count):
        response = await request(http)
    profiler.disable()
    assert response.status_code < 300, response.text
    shares: dict[str, float] = defaultdict(float)
    unplaced: dict[str, float] = defaultdict(float)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own, _, callers) in stats.items():
        part = part_of(f"{filename}:{function}")
        if filename == "~" and part == "Python runtime, other":
            # A built-in (`isinstance`, `dict.get`) is charged to the parts that called it, by the time each
            # call site spent in it.
            for (caller_file, _, caller_function), (_, _, spent, _) in callers.items():
                shares[part_of(f"{caller_file}:{caller_function}")] += spent
            continue
        shares[part] += own
        if part == "Python runtime, other":
            unplaced[f"{filename.rsplit('/', 2)[-2:]}:{function}"] += own
    total = sum(shares.values())
    print(f"\n### {name}: {plain:.2f} ms of CPU per request in this process (client included, unprofiled)\n")
    print("| part | share |")
    print("|---|---:|")
    for part, seconds in sorted(shares.items(), key=lambda item: -item[1]):
        if seconds / total >= 0.01:
            print(f"| {part} | {seconds / total:.0%} |")
    if verbose:
        for place, seconds in sorted(unplaced.items(), key=lambda item: -item[1])[:15]:
            print(f"    {seconds / total:5.1%}  {place}")


async def main(count: int, verbose: bool) -> None:
    database_url, _ = await fresh_database("ipt_fhir_profile")
    settings = Settings(database_url=database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        headers = {**auth_headers(), "Content-Type": "application/fhir+json"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as http:
            for patient in ("profiled",):
                await http.put(f"/fhir/Patient/{patient}", json={"resourceType": "Patient", "id": patient})
            body = inventory_response("profiled")
            assert body["questionnaire"] == QUESTIONNAIRE
            first = await http.post("/fhir/QuestionnaireResponse", json=body)
            assert first.status_code == 201, first.text
            stored = first.json()["id"]
            for _ in range(9):
                await http.post("/fhir/QuestionnaireResponse", json=body)

            async def create(http: httpx.AsyncClient) -> httpx.Response:
                return await http.post("/fhir/QuestionnaireResponse", json=body)

            async def read(http: httpx.AsyncClient) -> httpx.Response:
                return await http.get(f"/fhir/QuestionnaireResponse/{stored}")

            async def search(http: httpx.AsyncClient) -> httpx.Response:
                return await http.get("/fhir/QuestionnaireResponse", params={"subject": "Patient/profiled"})

            await profile("read by id", read, http, count, verbose=verbose)
            await profile("search, 10 hits", search, http, count, verbose=verbose)
            await profile("create, full validation", create, http, count, verbose=verbose)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500, help="requests per path")
    parser.add_argument("--unplaced", action="store_true", help="list the functions charged to no part")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.count, arguments.unplaced))
