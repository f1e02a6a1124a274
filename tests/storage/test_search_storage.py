"""The search SQL on PostgreSQL: the keyset cursor and the index rebuild.

Spec: https://hl7.org/fhir/R4/search.html#paging (the cursor is this server's opaque paging position) and
the search indexes of DESIGN.md ("reindex rebuilds them when definitions change").
"""

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Select, Table, delete, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import InvalidSearch
from service.fhir.search import parse_search
from service.interactions.reindex import reindex
from service.storage.indexing.rows import INDEX_TABLES, INFINITY, search_token
from service.storage.search import Scope, count_statement, decode_cursor, encode_cursor
from tests.factories import FHIR_JSON, patient


class TestCursor:
    def test_round_trip_with_dates_infinity_and_missing_values(self) -> None:
        query = parse_search("QuestionnaireResponse", [("_sort", "-authored,status")])
        keys = (datetime(2024, 5, 1, tzinfo=UTC), None, "QuestionnaireResponse", "id-1")
        position = decode_cursor(encode_cursor(keys, backwards=True), query.sort)
        assert position.keys == keys
        assert position.backwards is True
        unbounded = decode_cursor(encode_cursor((datetime.max, "a", "T", "x")), query.sort)
        assert unbounded.keys[0] == INFINITY

    @pytest.mark.parametrize("cursor", ["", "!!!", "e30", encode_cursor(("T", "x"))[:-2]])
    def test_rejects_a_cursor_of_another_search(self, cursor: str) -> None:
        query = parse_search("Patient", [("_sort", "family")])
        with pytest.raises(InvalidSearch) as info:
            decode_cursor(cursor or encode_cursor(("T", "x")), query.sort)
        assert info.value.issues[0].expression == "_cursor"


def _patient_rows(table: Table) -> Select[tuple[int]]:
    return select(func.count()).where(table.c.resource_type == "Patient")


class TestReindex:
    async def test_rebuilds_lost_rows(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        created = [
            (await client.post("/fhir/Patient", json=patient(gender="female"), headers=FHIR_JSON)).json()[
                "id"
            ]
            for _ in range(3)
        ]
        async with engine.begin() as connection:
            before = {
                table.name: (
                    await connection.execute(select(func.count()).where(table.c.resource_type == "Patient"))
                ).scalar_one()
                for table in INDEX_TABLES
            }
            await connection.execute(delete(search_token).where(search_token.c.resource_type == "Patient"))
        assert (await client.get("/fhir/Patient?gender=female")).json()["total"] == 0
        assert await reindex(engine, resource_type="Patient", batch_size=2) == 3
        found = (await client.get("/fhir/Patient?gender=female")).json()
        assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted(created)
        async with engine.connect() as connection:
            after = {
                table.name: (
                    await connection.execute(select(func.count()).where(table.c.resource_type == "Patient"))
                ).scalar_one()
                for table in INDEX_TABLES
            }
        assert after == before


class TestPartialIndexes:
    """Token texts and reference URLs are indexed only where present; the searches on them still use the
    index, because their strict operators imply `IS NOT NULL`."""

    @pytest.mark.parametrize(
        ("resource_type", "parameters", "index", "rows"),
        [
            (
                "Observation",
                [("code:text", "mood")],
                "ix_search_token_text",
                "INSERT INTO search_token (resource_type, resource_id, param, system, code)"
                " SELECT 'Observation', 'o' || n, 'code', 'http://loinc.org', 'c' || n"
                " FROM generate_series(1, 5000) AS n",
            ),
            (
                "QuestionnaireResponse",
                [("questionnaire", "http://x.org/Q/weekly|1.0")],
                "ix_search_reference_url",
                "INSERT INTO search_reference (resource_type, resource_id, param, target_type, target_id)"
                " SELECT 'QuestionnaireResponse', 'r' || n, 'subject', 'Patient', 'p' || n"
                " FROM generate_series(1, 5000) AS n",
            ),
        ],
    )
    async def test_search_plan_uses_the_partial_index(
        self,
        engine: AsyncEngine,
        resource_type: str,
        parameters: list[tuple[str, str]],
        index: str,
        rows: str,
    ) -> None:
        statement = count_statement(parse_search(resource_type, parameters), Scope((resource_type,)))
        compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        async with engine.connect() as connection:
            # Rows without a text or URL, as most are, with their statistics, in a transaction rolled back at
            # the end: the plan then does not depend on what earlier tests left in the tables. The question
            # is whether the planner may use the index, so it is not allowed to scan instead.
            await connection.execute(text(rows))
            await connection.execute(text("ANALYZE search_token, search_reference, resources"))
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = (await connection.execute(text(f"EXPLAIN {compiled}"))).scalars().all()
        assert any(index in line for line in plan), plan
