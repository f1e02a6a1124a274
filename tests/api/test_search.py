"""Search parameters over HTTP on PostgreSQL: types, modifiers, prefixes, combinations, chains, errors.

Spec: https://hl7.org/fhir/R4/search.html: #token, #string, #reference, #date and #prefix (precision rules),
#uri, #modifiers (`:missing`, `:not`, `:text`, `:exact`, `:contains`, `:below`, type), #combining (comma = OR,
repetition = AND), #chaining, #has, #errors (lenient and strict handling).
"""

from typing import Any

import httpx
import pytest

from tests.factories import FHIR_JSON, care_plan, patient, questionnaire_response


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def search(client: httpx.AsyncClient, url: str, **headers: str) -> dict[str, Any]:
    response = await client.get(f"/fhir/{url}", headers=headers)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["type"] == "searchset"
    return bundle


def form(url: str, **extra: Any) -> dict[str, Any]:
    """A Questionnaire the factory's responses (one string item `mood`) follow."""
    return {
        "resourceType": "Questionnaire",
        "url": url,
        "status": "active",
        "item": [{"linkId": "mood", "text": "Mood", "type": "string"}],
        **extra,
    }


def plan(**extra: Any) -> dict[str, Any]:
    """A CarePlan about a Group (a type not served here, so its reference is not checked)."""
    return care_plan(**{"subject": "Group/g1", **extra})


def matches(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


async def found(client: httpx.AsyncClient, url: str) -> set[str]:
    return set(matches(await search(client, url)))


async def rejected(client: httpx.AsyncClient, url: str, parameter: str, **headers: str) -> dict[str, Any]:
    response = await client.get(f"/fhir/{url}", headers=headers)
    assert response.status_code == 400, response.text
    outcome: dict[str, Any] = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [parameter]
    return outcome


class TestToken:
    async def test_code_system_and_code_no_system_and_any_code(self, client: httpx.AsyncClient) -> None:
        mrn = "http://hospital.example/mrn"
        a = await create(client, patient(identifier=[{"system": mrn, "value": "111"}], gender="female"))
        b = await create(client, patient(identifier=[{"value": "111"}], gender="male"))
        c = await create(client, patient(identifier=[{"system": "http://other", "value": "222"}]))
        assert await found(client, "Patient?identifier=111") == {a["id"], b["id"]}
        assert await found(client, f"Patient?identifier={mrn}|111") == {a["id"]}
        assert await found(client, "Patient?identifier=|111") == {b["id"]}
        assert await found(client, "Patient?identifier=http://other|") == {c["id"]}
        assert await found(client, "Patient?gender=female") == {a["id"]}

    async def test_not_includes_resources_without_a_value(self, client: httpx.AsyncClient) -> None:
        female = await create(client, patient(gender="female"))
        male = await create(client, patient(gender="male"))
        unknown = await create(client, patient())
        assert await found(client, "Patient?gender:not=female") == {male["id"], unknown["id"]}
        assert female["id"] not in await found(client, "Patient?gender:not=female,other")

    async def test_text_matches_display_and_text(self, client: httpx.AsyncClient) -> None:
        depressed = await create(
            client,
            {
                "resourceType": "Condition",
                "subject": {"reference": "Group/g1"},
                "code": {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "35489007", "display": "Depression"}
                    ],
                    "text": "Major depressive disorder",
                },
            },
        )
        await create(client, {"resourceType": "Condition", "subject": {"reference": "Group/g1"}})
        assert await found(client, "Condition?code:text=depress") == {depressed["id"]}
        assert await found(client, "Condition?code:text=MAJOR") == {depressed["id"]}
        assert await found(client, "Condition?code=http://snomed.info/sct|35489007") == {depressed["id"]}

    async def test_telecom_email_and_phone(self, client: httpx.AsyncClient) -> None:
        reachable = await create(
            client,
            patient(
                telecom=[
                    {"system": "email", "value": "sam@example.org"},
                    {"system": "phone", "value": "555-0101"},
                ]
            ),
        )
        await create(client, patient())
        assert await found(client, "Patient?email=sam@example.org") == {reachable["id"]}
        assert await found(client, "Patient?phone=555-0101") == {reachable["id"]}
        assert await found(client, "Patient?telecom=phone|555-0101") == {reachable["id"]}
        assert await found(client, "Patient?phone=sam@example.org") == set()

    async def test_id_tag_and_profile(self, client: httpx.AsyncClient) -> None:
        tagged = await create(
            client,
            patient(
                meta={
                    "tag": [{"system": "http://example.org/tags", "code": "ipt"}],
                    "profile": ["http://example.org/StructureDefinition/ipt-patient"],
                    "security": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
                    ],
                }
            ),
        )
        other = await create(client, patient())
        assert await found(client, f"Patient?_id={tagged['id']}") == {tagged["id"]}
        assert await found(client, f"Patient?_id={tagged['id']},{other['id']}") == {tagged["id"], other["id"]}
        assert await found(client, "Patient?_tag=http://example.org/tags|ipt") == {tagged["id"]}
        assert await found(client, "Patient?_security=R") == {tagged["id"]}
        profile = "http://example.org/StructureDefinition/ipt-patient"
        assert await found(client, f"Patient?_profile={profile}") == {tagged["id"]}


class TestString:
    async def test_starts_with_case_and_accent_insensitive(self, client: httpx.AsyncClient) -> None:
        muller = await create(client, patient(family="Müller", given="Anna"))
        await create(client, patient(family="Miller", given="Bob"))
        assert await found(client, "Patient?family=muller") == {muller["id"]}
        assert await found(client, "Patient?family=MÜL") == {muller["id"]}
        assert await found(client, "Patient?name=ann") == {muller["id"]}
        assert await found(client, "Patient?given=bo") != {muller["id"]}
        assert await found(client, "Patient?family=ller") == set()

    async def test_exact_and_contains(self, client: httpx.AsyncClient) -> None:
        muller = await create(client, patient(family="Müller"))
        miller = await create(client, patient(family="Miller"))
        assert await found(client, "Patient?family:exact=Müller") == {muller["id"]}
        assert await found(client, "Patient?family:exact=müller") == set()
        assert await found(client, "Patient?family:contains=LLER") == {muller["id"], miller["id"]}
        assert await found(client, "Patient?family:contains=%25") == set()

    async def test_like_wildcards_are_literal(self, client: httpx.AsyncClient) -> None:
        await create(client, patient(family="Rivera"))
        underscore = await create(client, patient(family="R_vera"))
        assert await found(client, "Patient?family=r_") == {underscore["id"]}


class TestReference:
    async def test_id_type_id_absolute_and_type_modifier(self, client: httpx.AsyncClient) -> None:
        sam = await create(client, patient())
        lee = await create(client, patient())
        mine = await create(client, care_plan(subject=f"Patient/{sam['id']}"))
        await create(client, care_plan(subject=f"Patient/{lee['id']}"))
        group = await create(client, care_plan(subject=f"Group/{sam['id']}"))
        assert await found(client, f"CarePlan?subject=Patient/{sam['id']}") == {mine["id"]}
        assert await found(client, f"CarePlan?subject:Patient={sam['id']}") == {mine["id"]}
        assert await found(client, f"CarePlan?subject:Group={sam['id']}") == {group["id"]}
        assert await found(client, f"CarePlan?subject={sam['id']}") == {mine["id"], group["id"]}
        assert await found(client, f"CarePlan?subject=http://testserver/fhir/Patient/{sam['id']}") == {
            mine["id"]
        }
        assert await found(client, f"CarePlan?patient={sam['id']}") == {mine["id"]}
        qr = await create(client, questionnaire_response(subject={"reference": f"Patient/{sam['id']}"}))
        assert await found(client, f"QuestionnaireResponse?subject=Patient/{sam['id']}") == {qr["id"]}

    async def test_external_url(self, client: httpx.AsyncClient) -> None:
        outside = "https://elsewhere.example/fhir/Patient/9"
        remote = await create(client, care_plan(subject=outside))
        await create(client, care_plan(subject="Group/9"))
        assert await found(client, f"CarePlan?subject={outside}") == {remote["id"]}

    async def test_canonical_by_url_version_and_id(self, client: httpx.AsyncClient) -> None:
        url = "http://example.org/Questionnaire/mood"
        v1 = await create(client, form(url, version="1"))
        await create(client, form(url, version="2"))
        sam = {"reference": f"Patient/{(await create(client, patient()))['id']}"}
        plain = await create(client, questionnaire_response(questionnaire=url, subject=sam))
        first = await create(client, questionnaire_response(questionnaire=f"{url}|1", subject=sam))
        second = await create(client, questionnaire_response(questionnaire=f"{url}|2", subject=sam))
        qr = "QuestionnaireResponse"
        assert await found(client, f"{qr}?questionnaire={url}") == {plain["id"], first["id"], second["id"]}
        assert await found(client, f"{qr}?questionnaire={url}|1") == {first["id"]}
        # By id: through the Questionnaire's url and version (an unversioned reference names any version).
        assert await found(client, f"{qr}?questionnaire={v1['id']}") == {plain["id"], first["id"]}
        assert await found(client, f"{qr}?questionnaire=Questionnaire/{v1['id']}") == {
            plain["id"],
            first["id"],
        }

    async def test_deleted_resources_are_not_found(self, client: httpx.AsyncClient) -> None:
        gone = await create(client, patient(family="Gone"))
        assert (await client.delete(f"/fhir/Patient/{gone['id']}")).status_code == 204
        assert await found(client, "Patient?family=gone") == set()


class TestDate:
    @pytest.fixture
    async def responses(self, client: httpx.AsyncClient) -> dict[str, str]:
        authored = {
            "day": "2024-05-01",
            "instant": "2024-05-01T10:30:00Z",
            "offset": "2024-05-01T23:30:00-05:00",
            "june": "2024-06-15T08:00:00Z",
            "year": "2023",
        }
        created = {}
        for name, value in authored.items():
            created[name] = (await create(client, questionnaire_response(authored=value)))["id"]
        return created

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("eq2024-05-01", {"day", "instant"}),
            ("2024-05", {"day", "instant", "offset"}),
            ("eq2024", {"day", "instant", "offset", "june"}),
            ("eq2024-05-01T10:30:00Z", {"instant"}),
            ("eq2024-05-01T05:30:00-05:00", {"instant"}),
            ("ne2024-05", {"june", "year"}),
            ("gt2024-05-01", {"offset", "june"}),
            ("ge2024-05-01", {"day", "instant", "offset", "june"}),
            ("lt2024-05-01", {"year"}),
            ("le2024-05-01", {"day", "instant", "year"}),
            ("sa2024-05-01", {"offset", "june"}),
            ("eb2024-05-01", {"year"}),
            # The whole day 2024-05-01 reaches both above and below 10:30 that day (#prefix: "intersects").
            ("gt2024-05-01T10:30:00Z", {"day", "offset", "june"}),
            ("ge2024-05-01T10:30:00Z", {"day", "instant", "offset", "june"}),
            ("lt2024-05-01T10:30:00Z", {"day", "year"}),
            ("le2024-05-01T10:30:00Z", {"day", "instant", "year"}),
        ],
    )
    async def test_prefixes_and_precision(
        self, client: httpx.AsyncClient, responses: dict[str, str], query: str, expected: set[str]
    ) -> None:
        result = await found(client, f"QuestionnaireResponse?authored={query.replace('+', '%2B')}")
        assert result == {responses[name] for name in expected}

    async def test_approximately(self, client: httpx.AsyncClient, responses: dict[str, str]) -> None:
        result = await found(client, "QuestionnaireResponse?authored=ap2024-05-03")
        assert {responses["day"], responses["instant"], responses["offset"]} <= result
        assert responses["year"] not in result

    async def test_period_and_date(self, client: httpx.AsyncClient) -> None:
        spring = await create(client, plan(period={"start": "2024-03-01", "end": "2024-05-31"}))
        open_ended = await create(client, plan(period={"start": "2024-09-01"}))
        await create(client, plan())
        assert await found(client, "CarePlan?date=eq2024-04") == set()
        assert await found(client, "CarePlan?date=ge2024-04-01") == {spring["id"], open_ended["id"]}
        assert await found(client, "CarePlan?date=le2024-04-01") == {spring["id"]}
        assert await found(client, "CarePlan?date=sa2024-06-01") == {open_ended["id"]}
        assert await found(client, "CarePlan?date=eb2024-06-01") == {spring["id"]}
        assert await found(client, "CarePlan?date=gt2030") == {open_ended["id"]}
        assert await found(client, "Patient?birthdate=1990") == set()
        born = await create(client, patient(birthDate="1990-02-03"))
        assert await found(client, "Patient?birthdate=1990") == {born["id"]}
        assert await found(client, "Patient?birthdate=1990-02-03") == {born["id"]}
        assert await found(client, "Patient?birthdate=eq1990-02-03T10:00:00Z") == set()

    async def test_last_updated(self, client: httpx.AsyncClient) -> None:
        first = await create(client, patient())
        stamp = first["meta"]["lastUpdated"]
        assert first["id"] in await found(client, f"Patient?_lastUpdated=le{stamp}")
        assert first["id"] in await found(client, f"Patient?_lastUpdated={stamp[:10]}")
        assert await found(client, "Patient?_lastUpdated=lt2000") == set()
        assert await found(client, f"Patient?_lastUpdated=gt{stamp}") == set()


class TestUri:
    async def test_exact_and_below(self, client: httpx.AsyncClient) -> None:
        phq = await create(
            client, {"resourceType": "Questionnaire", "url": "http://example.org/q/phq-9", "status": "active"}
        )
        gad = await create(
            client, {"resourceType": "Questionnaire", "url": "http://example.org/q/gad-7", "status": "active"}
        )
        assert await found(client, "Questionnaire?url=http://example.org/q/phq-9") == {phq["id"]}
        assert await found(client, "Questionnaire?url=http://example.org/q") == set()
        assert await found(client, "Questionnaire?url:below=http://example.org/q") == {phq["id"], gad["id"]}


class TestMissing:
    async def test_missing_true_and_false_on_each_type(self, client: httpx.AsyncClient) -> None:
        await create(client, form("http://q/1"))
        sam = await create(client, patient())
        full = await create(
            client,
            questionnaire_response(
                authored="2024-01-01",
                subject={"reference": f"Patient/{sam['id']}"},
                questionnaire="http://q/1",
            ),
        )
        empty = await create(client, questionnaire_response())
        qr = "QuestionnaireResponse"
        for parameter in ("authored", "subject", "questionnaire"):
            assert await found(client, f"{qr}?{parameter}:missing=true") == {empty["id"]}, parameter
            assert await found(client, f"{qr}?{parameter}:missing=false") == {full["id"]}, parameter
        named = await create(client, patient())
        nameless = await create(client, {"resourceType": "Patient", "gender": "other"})
        assert await found(client, "Patient?name:missing=true") == {nameless["id"]}
        assert await found(client, "Patient?gender:missing=true") == {sam["id"], named["id"]}
        assert await found(client, "Patient?_id:missing=false") == {sam["id"], named["id"], nameless["id"]}


class TestIdAndLastUpdated:
    """`_id` and `_lastUpdated` wherever they are searched: on the searched type, at the end of a chain, in
    `_has`, with modifiers and with a system."""

    async def test_through_chains_and_has(self, client: httpx.AsyncClient) -> None:
        await create(client, form("http://q/1"))
        sam = await create(client, patient())
        kim = await create(client, patient())
        answers = {
            owner["id"]: await create(
                client,
                questionnaire_response(
                    subject={"reference": f"Patient/{owner['id']}"}, questionnaire="http://q/1"
                ),
            )
            for owner in (sam, kim)
        }
        ours, theirs = answers[sam["id"]]["id"], answers[kim["id"]]["id"]
        qr = "QuestionnaireResponse"
        assert await found(client, f"{qr}?subject:Patient._id={sam['id']}") == {ours}
        assert await found(client, f"{qr}?subject._id={sam['id']},{kim['id']}") == {ours, theirs}
        assert await found(client, f"{qr}?subject:Patient._lastUpdated=gt2000") == {ours, theirs}
        assert await found(client, f"{qr}?subject:Patient._lastUpdated=lt2000") == set()
        # meta.lastUpdated is given to the millisecond: equal to it means written within that millisecond.
        stamp = sam["meta"]["lastUpdated"]
        assert ours in await found(client, f"{qr}?subject:Patient._lastUpdated={stamp}")
        assert await found(client, f"Patient?_has:{qr}:subject:_id={ours}") == {sam["id"]}
        assert await found(client, f"Patient?_has:{qr}:subject:_lastUpdated=gt2000") == {sam["id"], kim["id"]}
        assert await found(client, f"Patient?_has:{qr}:subject:_lastUpdated=lt2000") == set()

    async def test_modifiers_and_systems(self, client: httpx.AsyncClient) -> None:
        sam = await create(client, patient())
        kim = await create(client, patient())
        both = {sam["id"], kim["id"]}
        assert await found(client, f"Patient?_id:not={sam['id']}") == {kim["id"]}
        assert await found(client, "Patient?_id:missing=true") == set()
        assert await found(client, "Patient?_lastUpdated:missing=true") == set()
        assert await found(client, "Patient?_lastUpdated:missing=false") == both
        # An id has no system: `|x` asks for none, `s|x` for one it cannot have.
        assert await found(client, f"Patient?_id=|{sam['id']}") == {sam["id"]}
        assert await found(client, f"Patient?_id=http://x.org|{sam['id']}") == set()
        assert await found(client, f"Patient?_lastUpdated={sam['meta']['lastUpdated']}") >= {sam["id"]}


class TestCombining:
    async def test_comma_is_or_and_repetition_is_and(self, client: httpx.AsyncClient) -> None:
        active = await create(client, plan(status="active"))
        draft = await create(client, plan(status="draft"))
        await create(client, plan(status="completed"))
        assert await found(client, "CarePlan?status=active,draft") == {active["id"], draft["id"]}
        assert await found(client, "CarePlan?status=active,draft&status=draft") == {draft["id"]}
        assert await found(client, "CarePlan?status=active&status=draft") == set()
        assert await found(client, "CarePlan?status=active&intent=plan") == {active["id"]}

    async def test_escaped_comma_is_part_of_the_value(self, client: httpx.AsyncClient) -> None:
        comma = await create(client, patient(family="Smith,Jones"))
        await create(client, patient(family="Jones"))
        assert await found(client, "Patient?family:exact=Smith\\,Jones") == {comma["id"]}


class TestChains:
    async def test_forward_chain_with_and_without_type(self, client: httpx.AsyncClient) -> None:
        mrn = "http://hospital.example/mrn"
        sam = await create(client, patient(family="Rivera", identifier=[{"system": mrn, "value": "42"}]))
        lee = await create(client, patient(family="Lee"))
        mine = await create(client, questionnaire_response(subject={"reference": f"Patient/{sam['id']}"}))
        await create(client, questionnaire_response(subject={"reference": f"Patient/{lee['id']}"}))
        qr = "QuestionnaireResponse"
        assert await found(client, f"{qr}?subject:Patient.identifier={mrn}|42") == {mine["id"]}
        plan = await create(client, care_plan(subject=f"Patient/{sam['id']}"))
        await create(client, care_plan(subject=f"Patient/{lee['id']}"))
        assert await found(client, "CarePlan?subject.name=rivera") == {plan["id"]}
        assert await found(client, "CarePlan?patient.family=LEE") != {plan["id"]}

    async def test_chain_through_a_canonical(self, client: httpx.AsyncClient) -> None:
        url = "http://example.org/Questionnaire/phq-9"
        other = "http://example.org/Questionnaire/other"
        await create(client, form(url, name="PHQ9"))
        await create(client, form(other, name="Other"))
        sam = {"reference": f"Patient/{(await create(client, patient()))['id']}"}
        answered = await create(client, questionnaire_response(questionnaire=url, subject=sam))
        await create(client, questionnaire_response(questionnaire=other, subject=sam))
        assert await found(client, "QuestionnaireResponse?questionnaire.name=phq") == {answered["id"]}

    async def test_chain_missing_needs_an_existing_target(self, client: httpx.AsyncClient) -> None:
        nameless = await create(client, {"resourceType": "Patient", "gender": "other"})
        named = await create(client, patient())
        plan = await create(client, care_plan(subject=f"Patient/{nameless['id']}"))
        await create(client, care_plan(subject=f"Patient/{named['id']}"))
        # A Group is not served here, so nothing is known about it: it does not count as missing a name.
        await create(client, care_plan(subject="Group/unknown"))
        assert await found(client, "CarePlan?subject:Patient.name:missing=true") == {plan["id"]}

    async def test_reverse_chain(self, client: httpx.AsyncClient) -> None:
        sam = await create(client, patient())
        lee = await create(client, patient())
        await create(client, care_plan(subject=f"Patient/{sam['id']}", status="active"))
        await create(client, care_plan(subject=f"Patient/{lee['id']}", status="completed"))
        assert await found(client, "Patient?_has:CarePlan:subject:status=active") == {sam["id"]}
        assert await found(client, "Patient?_has:CarePlan:patient:status=active,completed") == {
            sam["id"],
            lee["id"],
        }

    async def test_reverse_chain_through_a_canonical(self, client: httpx.AsyncClient) -> None:
        url = "http://example.org/Questionnaire/journal"
        journal = await create(client, form(url))
        await create(client, form("http://example.org/q2"))
        sam = {"reference": f"Patient/{(await create(client, patient()))['id']}"}
        await create(client, questionnaire_response(questionnaire=url, status="completed", subject=sam))
        has = "_has:QuestionnaireResponse:questionnaire:status=completed"
        assert await found(client, f"Questionnaire?{has}") == {journal["id"]}


class TestHandling:
    async def test_lenient_ignores_and_reports_unknown(self, client: httpx.AsyncClient) -> None:
        active = await create(client, plan(status="active"))
        bundle = await search(client, "CarePlan?status=active&colour=blue&_text=x")
        assert matches(bundle) == [active["id"]]
        self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
        assert "colour" not in self_link
        assert "_text" not in self_link
        assert "status=active" in self_link
        outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
        assert len(outcome) == 1
        issues = outcome[0]["resource"]["issue"]
        assert {i["expression"][0] for i in issues} == {"colour", "_text"}
        assert all(i["severity"] == "warning" for i in issues)

    async def test_strict_rejects_unknown(self, client: httpx.AsyncClient) -> None:
        outcome = await rejected(client, "CarePlan?colour=blue", "colour", Prefer="handling=strict")
        assert outcome["issue"][0]["code"] == "not-supported"
        await rejected(client, "CarePlan?status:above=x", "status:above", Prefer="handling=strict")
        ok = await client.get("/fhir/CarePlan?status=active", headers={"Prefer": "handling=strict"})
        assert ok.status_code == 200

    @pytest.mark.parametrize(
        ("url", "parameter"),
        [
            ("QuestionnaireResponse?authored=2024-13-01", "authored"),
            ("QuestionnaireResponse?authored=xx2024", "authored"),
            ("QuestionnaireResponse?authored=yesterday", "authored"),
            ("Patient?birthdate=ge", "birthdate"),
            ("Patient?gender:missing=maybe", "gender:missing"),
            ("Patient?_count=-1", "_count"),
            ("Patient?_count=ten", "_count"),
            ("Patient?_total=some", "_total"),
            ("Patient?_summary=maybe", "_summary"),
            ("Patient?_cursor=not-a-cursor", "_cursor"),
            ("Patient?_cursor=eyJkIjoibiIsImsiOlsxXX0", "_cursor"),
            ("CarePlan?subject=Practitioner/1", "subject"),
            ("CarePlan?_sort=status&_cursor=eyJkIjoibiIsImsiOlsxLCJhIiwiYiJdfQ", "_cursor"),
            ("CarePlan?subject:Practitioner=1", "subject:Practitioner"),
            ("CarePlan?subject=a/b/c", "subject"),
            ("CarePlan?status.name=x", "status.name"),
            ("CarePlan?_include=CarePlan:status", "_include"),
            ("CarePlan?_include=nonsense", "_include"),
            ("Patient?_has:CarePlan=active", "_has:CarePlan"),
            ("Patient?family=%00x", "family"),
            ("Patient?identifier=|", "identifier"),
        ],
    )
    async def test_malformed_values_are_400_naming_the_parameter(
        self, client: httpx.AsyncClient, url: str, parameter: str
    ) -> None:
        await rejected(client, url, parameter)

    async def test_bad_value_changes_nothing_and_is_not_500(self, client: httpx.AsyncClient) -> None:
        await create(client, patient())
        response = await client.get("/fhir/Patient?_lastUpdated=ap0001-01-01")
        assert response.status_code == 200
