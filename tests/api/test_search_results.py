"""Search results over HTTP on PostgreSQL: the searchset Bundle, paging, sorting, includes, subsets.

Spec: https://hl7.org/fhir/R4/search.html: #return (`_sort`, `_count`, `_total`, `_include`, `_revinclude`
with `:iterate` and `*`, `_summary`, `_elements`), #paging (links; keyset paging stays correct while others
write), #errors (ignored parameters), https://hl7.org/fhir/R4/http.html#search (`POST [type]/_search`,
`GET [base]?_type=`).
"""

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.test_search import create, found, matches, plan, search
from tests.factories import care_plan, patient, practitioner, questionnaire_response


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            url: str = item["url"]
            parts = urlsplit(url)
            return parts.path.removeprefix("/fhir/") + (f"?{parts.query}" if parts.query else "")
    return None


async def walk(client: httpx.AsyncClient, url: str, relation: str = "next") -> list[list[str]]:
    pages = []
    next_url: str | None = url
    while next_url is not None:
        bundle = await search(client, next_url)
        pages.append(matches(bundle))
        next_url = link(bundle, relation)
    return pages


class TestBundle:
    async def test_searchset_with_total_links_and_entries(self, client: httpx.AsyncClient) -> None:
        made = await create(client, plan(status="active"))
        bundle = await search(client, "CarePlan?status=active")
        assert bundle["total"] == 1
        entry = bundle["entry"][0]
        assert entry["fullUrl"] == f"http://testserver/fhir/CarePlan/{made['id']}"
        assert entry["search"] == {"mode": "match"}
        assert entry["resource"] == made
        assert link(bundle, "self") == "CarePlan?status=active"
        assert link(bundle, "first") == "CarePlan?status=active"
        assert link(bundle, "next") is None
        assert link(bundle, "previous") is None

    async def test_post_search_with_form_body_is_the_same(self, client: httpx.AsyncClient) -> None:
        made = await create(client, plan(status="active", intent="order"))
        await create(client, plan(status="active"))
        response = await client.post(
            "/fhir/CarePlan/_search?status=active",
            content="intent=order",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200
        assert matches(response.json()) == [made["id"]]
        assert link(response.json(), "self") == "CarePlan?status=active&intent=order"
        empty = await client.post("/fhir/CarePlan/_search")
        assert empty.status_code == 200
        assert empty.json()["total"] == 2

    async def test_post_search_refuses_other_bodies(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/fhir/CarePlan/_search",
            content='{"status": "active"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 415
        assert response.json()["issue"][0]["expression"] == ["Content-Type"]
        bad = await client.post(
            "/fhir/CarePlan/_search",
            content="date=tomorrow",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert bad.status_code == 400
        assert bad.json()["issue"][0]["expression"] == ["date"]

    async def test_total_modes_and_summary_count(self, client: httpx.AsyncClient) -> None:
        for _ in range(3):
            await create(client, plan(status="active"))
        assert "total" not in await search(client, "CarePlan?_total=none")
        first = await search(client, "CarePlan?_count=1")
        assert first["total"] == 3
        following = link(first, "next")
        assert following is not None
        assert "total" not in await search(client, following)
        accurate = link(await search(client, "CarePlan?_count=1&_total=accurate"), "next")
        assert accurate is not None
        assert (await search(client, accurate))["total"] == 3
        assert (await search(client, "CarePlan?_total=accurate&_count=1"))["total"] == 3
        estimate = await search(client, "CarePlan?_total=estimate&_count=1")
        assert isinstance(estimate["total"], int)
        assert estimate["total"] >= 0
        counted = await search(client, "CarePlan?_summary=count")
        assert counted["total"] == 3
        assert "entry" not in counted
        zero = await search(client, "CarePlan?_count=0")
        assert zero["total"] == 3
        assert "entry" not in zero

    async def test_count_is_capped_by_the_maximum(self, client: httpx.AsyncClient) -> None:
        bundle = await search(client, "Patient?_count=100000")
        assert link(bundle, "self") == "Patient?_count=500"


class TestSummaryAndElements:
    async def test_summary_true_keeps_summary_elements_and_tags_subsetted(
        self, client: httpx.AsyncClient
    ) -> None:
        await create(client, patient(gender="female", text={"status": "generated", "div": "<div>x</div>"}))
        resource = (await search(client, "Patient?_summary=true"))["entry"][0]["resource"]
        assert resource["gender"] == "female"
        assert "name" in resource
        assert "text" not in resource
        assert any(tag["code"] == "SUBSETTED" for tag in resource["meta"]["tag"])

    async def test_summary_data_drops_the_narrative(self, client: httpx.AsyncClient) -> None:
        await create(client, patient(text={"status": "generated", "div": "<div>x</div>"}))
        resource = (await search(client, "Patient?_summary=data"))["entry"][0]["resource"]
        assert "text" not in resource
        assert "name" in resource

    async def test_elements(self, client: httpx.AsyncClient) -> None:
        await create(client, patient(gender="female", birthDate="1990-01-01"))
        bundle = await search(client, "Patient?_elements=gender")
        resource = bundle["entry"][0]["resource"]
        assert set(resource) == {"resourceType", "id", "meta", "gender"}
        assert link(bundle, "self") == "Patient?_elements=gender"


class TestSort:
    async def test_date_string_token_and_id_both_directions(self, client: httpx.AsyncClient) -> None:
        sam = await create(client, patient())
        subject = {"reference": f"Patient/{sam['id']}"}
        made = {}
        for authored, _status in (
            ("2024-03-01", "completed"),
            ("2024-01-01", "amended"),
            ("2024-02-01", "completed"),
        ):
            made[authored] = (
                await create(client, questionnaire_response(authored=authored, subject=subject))
            )["id"]
        undated = (await create(client, questionnaire_response(subject=subject)))["id"]
        qr = f"QuestionnaireResponse?subject=Patient/{sam['id']}"
        assert matches(await search(client, f"{qr}&_sort=authored")) == [
            made["2024-01-01"],
            made["2024-02-01"],
            made["2024-03-01"],
            undated,
        ]
        assert matches(await search(client, f"{qr}&_sort=-authored")) == [
            made["2024-03-01"],
            made["2024-02-01"],
            made["2024-01-01"],
            undated,
        ]
        ids = matches(await search(client, f"{qr}&_sort=_id"))
        assert ids == sorted(ids)
        assert matches(await search(client, f"{qr}&_sort=-_id")) == sorted(ids, reverse=True)
        last_updated = matches(await search(client, f"{qr}&_sort=_lastUpdated"))
        assert last_updated == [made["2024-03-01"], made["2024-01-01"], made["2024-02-01"], undated]

    async def test_several_keys_and_strings(self, client: httpx.AsyncClient) -> None:
        zed = await create(client, patient(family="Zed", gender="female"))
        abe = await create(client, patient(family="Abe", gender="male"))
        bob = await create(client, patient(family="Bob", gender="female"))
        assert matches(await search(client, "Patient?_sort=family")) == [abe["id"], bob["id"], zed["id"]]
        assert matches(await search(client, "Patient?_sort=-family")) == [zed["id"], bob["id"], abe["id"]]
        assert matches(await search(client, "Patient?_sort=gender,-family")) == [
            zed["id"],
            bob["id"],
            abe["id"],
        ]

    async def test_unsortable_key_is_reported(self, client: httpx.AsyncClient) -> None:
        await create(client, plan())
        bundle = await search(client, "CarePlan?_sort=subject")
        outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
        assert outcome[0]["resource"]["issue"][0]["expression"] == ["_sort"]


class TestPaging:
    async def test_next_and_previous_walk_every_match_once(self, client: httpx.AsyncClient) -> None:
        created = {(await create(client, patient(family=f"F{i:02}")))["id"] for i in range(7)}
        pages = await walk(client, "Patient?_count=3&_sort=family")
        assert [len(page) for page in pages] == [3, 3, 1]
        assert {i for page in pages for i in page} == created
        last = await search(client, "Patient?_count=3&_sort=family")
        while (following := link(last, "next")) is not None:
            last = await search(client, following)
        back: list[list[str]] = []
        previous = link(last, "previous")
        while previous is not None:
            bundle = await search(client, previous)
            back.append(matches(bundle))
            previous = link(bundle, "previous")
        assert back == [pages[1], pages[0]]
        assert link(last, "first") == "Patient?_sort=family&_count=3"

    async def test_paging_stays_correct_while_others_write(self, client: httpx.AsyncClient) -> None:
        before = {(await create(client, plan(status="active")))["id"] for _ in range(12)}
        seen: list[str] = []
        url: str | None = "CarePlan?status=active&_count=4"
        written = 0
        while url is not None:
            bundle = await search(client, url)
            seen += matches(bundle)
            # Between page requests other clients add matches, and change one already seen and one not yet.
            await asyncio.gather(*(create(client, plan(status="active")) for _ in range(3)))
            written += 3
            for changed in (seen[0], sorted(before - set(seen))[0] if before - set(seen) else seen[-1]):
                current = (await client.get(f"/fhir/CarePlan/{changed}")).json()
                current["description"] = f"edit {written}"
                assert (await client.put(f"/fhir/CarePlan/{changed}", json=current)).status_code == 200
            url = link(bundle, "next")
        assert len(seen) == len(set(seen)), "a match was returned twice"
        assert before <= set(seen), "a match that existed all along was skipped"

    async def test_paging_by_date_keeps_ties_apart(self, client: httpx.AsyncClient) -> None:
        sam = await create(client, patient())
        subject = {"reference": f"Patient/{sam['id']}"}
        made = [
            (await create(client, questionnaire_response(authored="2024-05-01", subject=subject)))["id"]
            for _ in range(5)
        ]
        pages = await walk(client, "QuestionnaireResponse?_sort=-authored&_count=2")
        assert sorted(i for page in pages for i in page) == sorted(made)

    async def test_system_search_across_types(self, client: httpx.AsyncClient) -> None:
        person = await create(client, patient())
        doctor = await create(client, practitioner())
        made = await create(client, plan())
        ids = f"{person['id']},{doctor['id']},{made['id']}"
        response = await client.get(f"/fhir?_type=Patient,Practitioner&_id={ids}")
        assert response.status_code == 200
        assert set(matches(response.json())) == {person["id"], doctor["id"]}
        assert link(response.json(), "self") == f"/fhir?_type=Patient,Practitioner&_id={ids}"
        pages = []
        url: str | None = "/fhir?_type=Patient,Practitioner,CarePlan&_lastUpdated=gt2000&_count=2"
        while url is not None:
            bundle = (await client.get(url)).json()
            pages.append(matches(bundle))
            following = next((item["url"] for item in bundle["link"] if item["relation"] == "next"), None)
            url = following.removeprefix("http://testserver") if following else None
        assert [len(page) for page in pages] == [2, 1]
        assert {i for page in pages for i in page} == {person["id"], doctor["id"], made["id"]}

    async def test_system_search_errors_and_ignored(self, client: httpx.AsyncClient) -> None:
        bad = await client.get("/fhir?_type=Nothing")
        assert bad.status_code == 400
        assert bad.json()["issue"][0]["expression"] == ["_type"]
        strict = await client.get("/fhir?_type=Patient&family=x", headers={"Prefer": "handling=strict"})
        assert strict.status_code == 400
        assert strict.json()["issue"][0]["expression"] == ["family"]
        lenient = (await client.get("/fhir?_type=Patient&family=x")).json()
        assert [e["search"]["mode"] for e in lenient.get("entry", [])] == ["outcome"]


class TestIncludes:
    @pytest.fixture
    async def plan_with_team(self, client: httpx.AsyncClient) -> dict[str, str]:
        sam = await create(client, patient())
        doctor = await create(client, practitioner())
        team = await create(
            client,
            {
                "resourceType": "CareTeam",
                "subject": {"reference": f"Patient/{sam['id']}"},
                "participant": [{"member": {"reference": f"Practitioner/{doctor['id']}"}}],
            },
        )
        made = await create(
            client,
            care_plan(
                subject=f"Patient/{sam['id']}",
                status="active",
                careTeam=[{"reference": f"CareTeam/{team['id']}"}],
            ),
        )
        return {"patient": sam["id"], "doctor": doctor["id"], "team": team["id"], "plan": made["id"]}

    @staticmethod
    def included(bundle: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (e["resource"]["resourceType"], e["resource"]["id"])
            for e in bundle.get("entry", [])
            if e["search"]["mode"] == "include"
        }

    async def test_include(self, client: httpx.AsyncClient, plan_with_team: dict[str, str]) -> None:
        ids = plan_with_team
        bundle = await search(
            client, f"CarePlan?patient={ids['patient']}&status=active&_include=CarePlan:care-team"
        )
        assert matches(bundle) == [ids["plan"]]
        assert self.included(bundle) == {("CareTeam", ids["team"])}
        assert bundle["total"] == 1
        typed = await search(client, "CarePlan?_include=CarePlan:subject:Patient")
        assert self.included(typed) == {("Patient", ids["patient"])}

    async def test_include_iterate_and_wildcard(
        self, client: httpx.AsyncClient, plan_with_team: dict[str, str]
    ) -> None:
        ids = plan_with_team
        bundle = await search(
            client, "CarePlan?_include=CarePlan:care-team&_include:iterate=CareTeam:participant"
        )
        assert self.included(bundle) == {("CareTeam", ids["team"]), ("Practitioner", ids["doctor"])}
        wildcard = await search(client, "CarePlan?_include=*")
        assert self.included(wildcard) == {("CareTeam", ids["team"]), ("Patient", ids["patient"])}
        self_link = link(bundle, "self")
        assert self_link is not None
        assert "_include:iterate=CareTeam:participant" in self_link

    async def test_revinclude(self, client: httpx.AsyncClient, plan_with_team: dict[str, str]) -> None:
        ids = plan_with_team
        bundle = await search(client, f"Patient?_id={ids['patient']}&_revinclude=CarePlan:subject")
        assert matches(bundle) == [ids["patient"]]
        assert self.included(bundle) == {("CarePlan", ids["plan"])}
        everything = await search(client, f"Patient?_id={ids['patient']}&_revinclude=*")
        clinical = {item for item in self.included(everything) if item[0] in ("CarePlan", "CareTeam")}
        assert clinical == {("CarePlan", ids["plan"]), ("CareTeam", ids["team"])}
        iterate = await search(
            client,
            f"Patient?_id={ids['patient']}&_revinclude=CarePlan:subject&_include:iterate=CarePlan:care-team",
        )
        assert self.included(iterate) == {("CarePlan", ids["plan"]), ("CareTeam", ids["team"])}

    async def test_canonical_include_and_revinclude(self, client: httpx.AsyncClient) -> None:
        url = "http://example.org/Questionnaire/mood"
        questionnaire = await create(
            client,
            {
                "resourceType": "Questionnaire",
                "url": url,
                "status": "active",
                "item": [{"linkId": "mood", "type": "string"}],
            },
        )
        sam = await create(client, patient())
        answer = await create(
            client, questionnaire_response(questionnaire=url, subject={"reference": f"Patient/{sam['id']}"})
        )
        forward = await search(client, "QuestionnaireResponse?_include=QuestionnaireResponse:questionnaire")
        assert self.included(forward) == {("Questionnaire", questionnaire["id"])}
        reverse = await search(client, "Questionnaire?_revinclude=QuestionnaireResponse:questionnaire")
        assert self.included(reverse) == {("QuestionnaireResponse", answer["id"])}
        assert await found(client, f"Questionnaire?url={url}") == {questionnaire["id"]}
