"""Search benchmark (`make bench-search`): the service against hand-written SQL on the same data.

Loads a fresh database (10,000 patients, 100,000 QuestionnaireResponses, 20,000 CarePlans with a CareTeam
each, by default), then times four searches through the HTTP API, with one client and with eight, and the
equivalent hand-written SQL through asyncpg on the same run (and, as a baseline, a plain read by id):

1. `QuestionnaireResponse?subject=Patient/x&_sort=-authored`
2. `CarePlan?patient=x&status=active&_include=CarePlan:care-team`
3. `Questionnaire?url=...`
4. `QuestionnaireResponse?authored=ge...&_count=100`, paged to the end (`next` links)

Loading: a share of every type (1% by default) is created through the API (`POST`, the full write path with
validation and index extraction); the rest is written with COPY, with index rows computed by the service's
own extraction (`extract_index_values` and `index_rows`), so both paths produce the same rows. Then ANALYZE.
The EXPLAIN plans of the service's statements are printed, to check that they use index scans.

Usage: `python -m benchmarks.search [--patients N] [--responses N] [--plans N] [--repeat N]`
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.harness import auth_headers, dsn, fresh_database, services
from service.fhir.extraction import extract_index_values
from service.fhir.search import parse_search
from service.storage.indexing.rows import INDEX_TABLES, index_rows
from service.storage.search import Scope, include_statement, page_statement

DATABASE = "ipt_fhir_bench"
QUESTIONNAIRE_URL = "http://example.org/bench/Questionnaire/mood"
MRN = "http://hospital.example/mrn"
NOW = datetime.now(UTC).replace(microsecond=0)
FAMILIES = ("Rivera", "Lee", "Okafor", "Müller", "Nguyen")


# --- data ----------------------------------------------------------------------------------------


def _meta(at: datetime) -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}


def make_patient(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": f"MRN{index:06}"}],
        "name": [
            {"family": random.choice(["Rivera", "Lee", "Okafor", "Müller", "Nguyen"]), "given": ["Sam"]}
        ],
        "gender": random.choice(["female", "male", "other"]),
        "birthDate": f"{random.randint(1940, 2005)}-0{random.randint(1, 9)}-1{random.randint(0, 9)}",
    }


def make_response(patient_id: str) -> dict[str, Any]:
    authored = NOW - timedelta(minutes=random.randint(0, 2 * 365 * 24 * 60))
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": authored.isoformat().replace("+00:00", "Z"),
        "item": [{"linkId": "mood", "answer": [{"valueString": random.choice(["better", "same", "worse"])}]}],
    }


def make_team(patient_id: str, practitioner_id: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"member": {"reference": f"Practitioner/{practitioner_id}"}}],
    }


def make_plan(patient_id: str, team_id: str) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "status": random.choice(["active", "completed", "draft"]),
        "intent": "plan",
        "subject": {"reference": f"Patient/{patient_id}"},
        "careTeam": [{"reference": f"CareTeam/{team_id}"}],
        "period": {"start": (NOW - timedelta(days=random.randint(0, 700))).date().isoformat()},
    }


QUESTIONNAIRE = {
    "resourceType": "Questionnaire",
    "url": QUESTIONNAIRE_URL,
    "version": "1",
    "name": "BenchMood",
    "status": "active",
    "item": [{"linkId": "mood", "text": "How is your mood?", "type": "string"}],
}


class BulkWriter:
    """Rows for COPY: the resource, its first version and its index rows, as the service writes them."""

    def __init__(self) -> None:
        self.resources: list[tuple[Any, ...]] = []
        self.versions: list[tuple[Any, ...]] = []
        self.index: dict[str, list[tuple[Any, ...]]] = {table.name: [] for table in INDEX_TABLES}

    def add(self, content: dict[str, Any], *, patient_id: str | None) -> str:
        resource_id = str(uuid.uuid4())
        at = datetime.now(UTC)
        stamped = {"resourceType": content["resourceType"], "id": resource_id, "meta": _meta(at), **content}
        body = orjson.dumps(stamped).decode()
        resource_type = content["resourceType"]
        owner = resource_id if resource_type == "Patient" else patient_id
        self.resources.append((resource_type, resource_id, 1, at, False, owner, body))
        self.versions.append((resource_type, resource_id, 1, at, False, "POST", owner, body))
        grouped = index_rows(resource_type, resource_id, extract_index_values(stamped), patient_id=owner)
        for table, rows in grouped.items():
            self.index[table.name].extend(rows)
        return resource_id

    async def copy(self, connection: asyncpg.Connection) -> None:
        resource_columns = [
            "resource_type",
            "id",
            "version_id",
            "last_updated",
            "deleted",
            "patient_id",
            "content",
        ]
        await connection.copy_records_to_table("resources", records=self.resources, columns=resource_columns)
        version_columns = [*resource_columns[:5], "method", "patient_id", "content"]
        await connection.copy_records_to_table(
            "resource_versions", records=self.versions, columns=version_columns
        )
        for table in INDEX_TABLES:
            rows = self.index[table.name]
            if rows:
                columns = [c.name for c in table.columns]
                await connection.copy_records_to_table(table.name, records=rows, columns=columns)


# --- timing --------------------------------------------------------------------------------------


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def timed(run: Callable[[], Awaitable[None]], *, clients: int, repeat: int) -> list[float]:
    samples: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await run()
            samples.append(time.perf_counter() - started)

    for _ in range(3):
        await run()
    await asyncio.gather(*(worker(repeat) for _ in range(clients)))
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--plans", type=int, default=20_000)
    parser.add_argument("--api-share", type=float, default=0.01, help="share created through the API")
    parser.add_argument("--repeat", type=int, default=200, help="requests per client and query")
    parser.add_argument("--since-days", type=int, default=30, help="authored=ge<today - N days> in query 4")
    options = parser.parse_args()
    random.seed(7)

    database_url, version = await fresh_database(DATABASE)
    headers = {"Content-Type": "application/fhir+json", **auth_headers()}
    async with services(database_url) as [base]:
        await run_benchmark(options, database_url, base, headers, version)


async def run_benchmark(
    options: argparse.Namespace, database_url: str, base: str, headers: dict[str, str], pg_version: str
) -> None:
    loading = time.perf_counter()
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=f"{base}/fhir", headers=headers, limits=limits, timeout=60) as http:

        async def post(resource: dict[str, Any]) -> str:
            response = await http.post(f"/{resource['resourceType']}", content=orjson.dumps(resource))
            response.raise_for_status()
            return str(response.json()["id"])

        await post(QUESTIONNAIRE)
        practitioners = [
            await post({"resourceType": "Practitioner", "name": [{"family": f"P{i}"}]}) for i in range(50)
        ]
        api_patients = max(1, int(options.patients * options.api_share))
        patients = [await post(make_patient(i)) for i in range(api_patients)]
        per_patient = max(1, options.responses // options.patients)
        plans_per_patient = max(1, options.plans // options.patients)
        api_created = 1 + len(practitioners) + len(patients)
        for patient_id in patients:
            await asyncio.gather(*(post(make_response(patient_id)) for _ in range(per_patient)))
            for _ in range(plans_per_patient):
                team = await post(make_team(patient_id, random.choice(practitioners)))
                await post(make_plan(patient_id, team))
            api_created += per_patient + 2 * plans_per_patient
        api_seconds = time.perf_counter() - loading

        bulk = BulkWriter()
        for index in range(api_patients, options.patients):
            patient_id = bulk.add(make_patient(index), patient_id=None)
            for _ in range(per_patient):
                bulk.add(make_response(patient_id), patient_id=patient_id)
            for _ in range(plans_per_patient):
                team = bulk.add(make_team(patient_id, random.choice(practitioners)), patient_id=patient_id)
                bulk.add(make_plan(patient_id, team), patient_id=patient_id)
        connection = await asyncpg.connect(dsn(database_url))
        await bulk.copy(connection)
        await connection.execute("ANALYZE")
        total_seconds = time.perf_counter() - loading
        count_rows = await connection.fetch("SELECT resource_type, count(*) FROM resources GROUP BY 1")
        counts: dict[str, int] = {row[0]: row[1] for row in count_rows}
        print(f"# loaded {counts} in {total_seconds:.0f} s")
        print(
            f"# {api_created} resources through the API in {api_seconds:.0f} s, {len(bulk.resources)} by COPY"
        )

        subject = random.choice(patients)
        since = (NOW - timedelta(days=options.since_days)).date().isoformat()
        queries = {
            "read Patient/x (baseline)": f"/Patient/{subject}",
            "QR?subject&_sort=-authored": f"/QuestionnaireResponse?subject=Patient/{subject}&_sort=-authored",
            "CarePlan?patient&status&_include": f"/CarePlan?patient={subject}&status=active"
            "&_include=CarePlan:care-team",
            "Questionnaire?url": f"/Questionnaire?url={QUESTIONNAIRE_URL}",
        }
        raw = raw_queries(connection, subject, since)
        results: list[tuple[str, str, int, float, float]] = []
        for name, url in queries.items():
            for clients in (1, 8):

                async def call(url: str = url) -> None:
                    response = await http.get(url)
                    response.raise_for_status()

                median, p99 = summary(await timed(call, clients=clients, repeat=options.repeat // clients))
                results.append((name, "service", clients, median, p99))
            pool = await asyncpg.create_pool(dsn(database_url), min_size=8, max_size=8)
            for clients in (1, 8):

                async def call_raw(name: str = name, pool: asyncpg.Pool = pool) -> None:
                    async with pool.acquire() as raw_connection:
                        await raw[name](raw_connection)  # type: ignore[arg-type]

                median, p99 = summary(
                    await timed(call_raw, clients=clients, repeat=options.repeat // clients)
                )
                results.append((name, "raw SQL", clients, median, p99))
            await pool.close()

        pages: list[float] = []
        traversal: list[float] = []
        matched = 0
        for _ in range(3):
            started = time.perf_counter()
            page_url: str | None = f"/QuestionnaireResponse?authored=ge{since}&_count=100"
            matched = 0
            while page_url is not None:
                page_started = time.perf_counter()
                response = await http.get(page_url)
                response.raise_for_status()
                pages.append(time.perf_counter() - page_started)
                bundle = response.json()
                matched += len(bundle.get("entry", []))
                page_url = next(
                    (link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None
                )
                if page_url is not None:
                    page_url = page_url.split("/fhir", 1)[1]
            traversal.append(time.perf_counter() - started)
        raw_pages: list[float] = []
        raw_traversal: list[float] = []
        for _ in range(3):
            started = time.perf_counter()
            last = ""
            while True:
                page_started = time.perf_counter()
                rows = await connection.fetch(RAW_PAGE, since_instant(since), last)
                raw_pages.append(time.perf_counter() - page_started)
                if len(rows) <= 100:
                    break
                last = rows[99]["id"]
            raw_traversal.append(time.perf_counter() - started)
        await print_plans(connection, subject, since)
        await connection.close()

    print()
    print(f"PostgreSQL {pg_version}; {os.cpu_count()} cores; {_memory()}; Python {platform.python_version()}")
    print()
    print("| Query | Path | Clients | Median (ms) | p99 (ms) |")
    print("|---|---|---:|---:|---:|")
    for name, path, clients, median, p99 in results:
        print(f"| `{name}` | {path} | {clients} | {median:.1f} | {p99:.1f} |")
    page_median, page_p99 = summary(pages)
    raw_median, raw_p99 = summary(raw_pages)
    print(f"| `QR?authored=ge&_count=100` per page | service | 1 | {page_median:.1f} | {page_p99:.1f} |")
    print(f"| `QR?authored=ge&_count=100` per page | raw SQL | 1 | {raw_median:.1f} | {raw_p99:.1f} |")
    print()
    print(
        f"Paging to the end: {matched} matches in {len(pages) // 3} pages, "
        f"{statistics.median(traversal) * 1000:.0f} ms through the service, "
        f"{statistics.median(raw_traversal) * 1000:.0f} ms raw (median of 3)."
    )


def since_instant(since: str) -> datetime:
    return datetime.fromisoformat(since).replace(tzinfo=UTC)


RAW_PAGE = """
SELECT r.id, r.content::text FROM resources r
WHERE r.resource_type = 'QuestionnaireResponse' AND NOT r.deleted AND r.id > $2
  AND EXISTS (SELECT 1 FROM search_date d WHERE d.resource_type = 'QuestionnaireResponse'
              AND d.resource_id = r.id AND d.param = 'authored' AND d.high > $1)
ORDER BY r.id LIMIT 101
"""


def raw_queries(
    connection: asyncpg.Connection, subject: str, since: str
) -> dict[str, Callable[[asyncpg.Connection], Awaitable[None]]]:
    """The same searches, written by hand: what the database alone costs."""

    async def by_subject(c: asyncpg.Connection) -> None:
        await c.fetch(
            """
            SELECT r.content::text FROM resources r
            JOIN search_reference s ON s.resource_type = r.resource_type AND s.resource_id = r.id
            LEFT JOIN LATERAL (SELECT max(high) AS high FROM search_date d
                               WHERE d.resource_type = r.resource_type AND d.resource_id = r.id
                                 AND d.param = 'authored') a ON true
            WHERE r.resource_type = 'QuestionnaireResponse' AND NOT r.deleted AND s.param = 'subject'
              AND s.target_type = 'Patient' AND s.target_id = $1 AND s.url IS NULL
            ORDER BY a.high DESC NULLS LAST, r.id LIMIT 21
            """,
            subject,
        )

    async def plans(c: asyncpg.Connection) -> None:
        rows = await c.fetch(
            """
            SELECT r.id, r.content::text FROM resources r
            WHERE r.resource_type = 'CarePlan' AND NOT r.deleted
              AND EXISTS (SELECT 1 FROM search_reference s WHERE s.resource_type = 'CarePlan'
                          AND s.resource_id = r.id AND s.param = 'patient' AND s.target_type = 'Patient'
                          AND s.target_id = $1 AND s.url IS NULL)
              AND EXISTS (SELECT 1 FROM search_token t WHERE t.resource_type = 'CarePlan'
                          AND t.resource_id = r.id AND t.param = 'status' AND t.code = 'active')
            ORDER BY r.id LIMIT 21
            """,
            subject,
        )
        await c.fetch(
            """
            SELECT r.content::text FROM resources r
            JOIN search_reference s ON s.target_type = r.resource_type AND s.target_id = r.id
            WHERE s.resource_type = 'CarePlan' AND s.resource_id = ANY($1::text[]) AND s.param = 'care-team'
              AND s.url IS NULL AND NOT r.deleted
            """,
            [row["id"] for row in rows],
        )

    async def by_url(c: asyncpg.Connection) -> None:
        await c.fetch(
            """
            SELECT r.content::text FROM resources r
            JOIN search_uri u ON u.resource_type = r.resource_type AND u.resource_id = r.id
            WHERE r.resource_type = 'Questionnaire' AND NOT r.deleted AND u.param = 'url' AND u.uri = $1
            ORDER BY r.id LIMIT 21
            """,
            QUESTIONNAIRE_URL,
        )

    async def read(c: asyncpg.Connection) -> None:
        await c.fetch(
            "SELECT content::text FROM resources WHERE resource_type = 'Patient' AND id = $1", subject
        )

    return {
        "read Patient/x (baseline)": read,
        "QR?subject&_sort=-authored": by_subject,
        "CarePlan?patient&status&_include": plans,
        "Questionnaire?url": by_url,
    }


async def print_plans(connection: asyncpg.Connection, subject: str, since: str) -> None:
    """EXPLAIN the statements the service runs for the four searches, with their real parameters."""
    from sqlalchemy.dialects import postgresql

    searches = [
        ("QuestionnaireResponse", [("subject", f"Patient/{subject}"), ("_sort", "-authored")]),
        ("CarePlan", [("patient", subject), ("status", "active"), ("_include", "CarePlan:care-team")]),
        ("Questionnaire", [("url", QUESTIONNAIRE_URL)]),
        ("QuestionnaireResponse", [("authored", f"ge{since}"), ("_count", "100")]),
    ]
    dialect: Any = getattr(postgresql, "asyncpg").dialect()  # noqa: B009
    for resource_type, parameters in searches:
        query = parse_search(resource_type, parameters)
        statements = [page_statement(query, Scope((resource_type,)), None)]
        if query.includes:
            include = include_statement(query, [("CarePlan", "x")], Scope(("CarePlan",)))
            if include is not None:
                statements.append(include)
        for statement in statements:
            compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
            values = [compiled.params[name] for name in compiled.positiontup or []]
            plan = await connection.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + str(compiled), *values)
            print(f"\n# EXPLAIN {resource_type}?{'&'.join(f'{k}={v}' for k, v in parameters)}")
            for row in plan:
                print("   ", row[0])


def _memory() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            kilobytes = int(meminfo.readline().split()[1])
        return f"{kilobytes / 1024 / 1024:.1f} GiB memory"
    except (OSError, ValueError, IndexError):
        return "memory unknown"


if __name__ == "__main__":
    asyncio.run(main())
