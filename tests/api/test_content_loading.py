"""The IPT content is loaded by (url, version): idempotent, versioned, readable through the FHIR API."""

import copy

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mappings.codes import WORKSHEET_SYSTEM as WORKSHEET_CODES
from mappings.content import load_content
from service.interactions.content import content_resource_id, load_ipt_content
from service.storage.repository import ResourceRepository
from service.storage.tables import resource_versions


async def _version_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(select(func.count()).select_from(resource_versions))).scalar_one()
        )


def _worksheet(resources: list[dict[str, object]], worksheet_id: str) -> dict[str, object]:
    return next(r for r in resources if r["resourceType"] == "Questionnaire" and r["id"] == worksheet_id)


class TestLoadContent:
    async def test_first_load_creates_everything_readable(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        content = load_content()
        report = await load_ipt_content(engine)
        assert len(report.created) == len(content)
        phq9 = _worksheet(content, "phq-9")
        response = await client.get(f"/fhir/Questionnaire/{content_resource_id(phq9)}")
        assert response.status_code == 200
        body = response.json()
        assert body["url"] == phq9["url"]
        assert body["item"] == phq9["item"]

    async def test_second_load_writes_nothing(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        await load_ipt_content(engine)
        before = await _version_rows(engine)
        report = await load_ipt_content(engine)
        assert report.created == []
        assert len(report.unchanged) == len(load_content())
        assert await _version_rows(engine) == before

    async def test_new_version_sits_beside_the_old_one(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        content = load_content()
        await load_ipt_content(engine)
        revised = copy.deepcopy(_worksheet(content, "goodbye-letter"))
        revised["version"] = "99.0.0"
        revised["title"] = "Goodbye Letter (revised)"
        report = await load_ipt_content(engine, [revised])
        assert report.created == [f"{revised['url']}|99.0.0"]
        async with engine.connect() as connection:
            repository = ResourceRepository(connection)
            latest = await repository.find_by_canonical("Questionnaire", str(revised["url"]))
            original = await repository.find_by_canonical(
                "Questionnaire", f"{revised['url']}|{_worksheet(content, 'goodbye-letter')['version']}"
            )
        assert latest is not None
        assert latest.id == content_resource_id(revised)
        assert original is not None
        assert original.id != latest.id

    async def test_changed_content_under_same_version_is_reported(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        content = load_content()
        await load_ipt_content(engine)
        edited = copy.deepcopy(_worksheet(content, "journal"))
        edited["title"] = "Journal, edited in place"
        report = await load_ipt_content(engine, [edited])
        assert report.changed_without_new_version == [f"{edited['url']}|{edited['version']}"]
        stored = (await client.get(f"/fhir/Questionnaire/{content_resource_id(edited)}")).json()
        assert stored["title"] == "Journal, edited in place"
        assert stored["meta"]["versionId"] == "2"

    async def test_unknown_canonical_finds_nothing(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        await load_ipt_content(engine)
        async with engine.connect() as connection:
            repository = ResourceRepository(connection)
            assert await repository.find_by_canonical("Questionnaire", "http://example.org/none") is None
            phq9 = _worksheet(load_content(), "phq-9")
            assert await repository.find_by_canonical("Questionnaire", f"{phq9['url']}|0.0.0") is None
            assert await repository.find_by_canonical("ValueSet", str(phq9["url"])) is None


class TestFindingContent:
    """The searches a portal or EHR uses to find a worksheet: by canonical, version, code and name."""

    @staticmethod
    def _ids(bundle: dict[str, object]) -> list[str]:
        return sorted(e["resource"]["id"] for e in bundle.get("entry", []))  # type: ignore[attr-defined,index]

    async def test_by_url_version_code_and_name(self, client: httpx.AsyncClient, engine: AsyncEngine) -> None:
        content = load_content()
        phq9 = _worksheet(content, "phq-9")
        revised = {**copy.deepcopy(phq9), "version": "2.0.0"}
        await load_ipt_content(engine, [*content, revised])
        old_id, new_id = content_resource_id(phq9), content_resource_id(revised)
        goodbye = _worksheet(content, "goodbye-letter")

        async def found(**params: str) -> list[str]:
            response = await client.get("/fhir/Questionnaire", params=params)
            assert response.status_code == 200, response.text
            return self._ids(response.json())

        assert await found(url=str(phq9["url"])) == sorted([old_id, new_id])
        assert await found(url=str(phq9["url"]), version="1.0.0") == [old_id]
        assert await found(url=str(phq9["url"]), version="2.0.0") == [new_id]
        # The form's own code (SDC questionnaire-code), and, as R4 defines `code`, the codes of its items.
        assert await found(**{"questionnaire-code": "http://loinc.org|44249-1"}) == sorted([old_id, new_id])
        assert await found(**{"questionnaire-code": "44249-1", "version": "2.0.0"}) == [new_id]
        ipt_code = f"{WORKSHEET_CODES}|goodbye-letter"
        assert await found(**{"questionnaire-code": ipt_code}) == [content_resource_id(goodbye)]
        assert await found(code="http://loinc.org|44250-9", version="1.0.0") == [old_id]
        assert await found(code="http://loinc.org|44249-1") == []
        assert await found(name=str(phq9["name"]), version="1.0.0") == [old_id]
        journal = _worksheet(content, "journal")
        assert await found(name=str(journal["name"])) == [content_resource_id(journal)]
        assert await found(url=str(phq9["url"]), version="9.9.9") == []

    async def test_a_canonical_with_version_resolves_to_that_version(
        self, client: httpx.AsyncClient, engine: AsyncEngine
    ) -> None:
        phq9 = _worksheet(load_content(), "phq-9")
        revised = {**copy.deepcopy(phq9), "version": "2.0.0"}
        await load_ipt_content(engine, [phq9, revised])
        # A response citing url|1.0.0 is validated against 1.0.0 and keeps citing it.
        response = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{phq9['url']}|1.0.0",
            "status": "in-progress",
            "subject": {"reference": "Patient/p1"},
        }
        await client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
        created = await client.post(
            "/fhir/QuestionnaireResponse", json=response, headers={"Content-Type": "application/fhir+json"}
        )
        assert created.status_code == 201, created.text
        by_form = await client.get(
            "/fhir/QuestionnaireResponse", params={"questionnaire": f"{phq9['url']}|1.0.0"}
        )
        assert self._ids(by_form.json()) == [created.json()["id"]]
        assert (
            self._ids(
                (
                    await client.get(
                        "/fhir/QuestionnaireResponse", params={"questionnaire": f"{phq9['url']}|2.0.0"}
                    )
                ).json()
            )
            == []
        )
