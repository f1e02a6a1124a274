"""The windows of the compartment wall: what includes, chains, `_has`, totals, writes and `PUT` can reveal.

Two clients, A and B, each with a care team, a goal, a condition, a plan and a worksheet response, sharing a
therapist. Every token below either is confined to A or holds no clinical scope at all; none may learn
anything of B (docs/security.md, "Who sees what"). The generated counterpart is test_noninterference.py.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.interactions import search as search_interaction
from service.storage import search as search_storage
from service.storage.tables import resource_versions
from tests.factories import FHIR_JSON, WORKSHEET_URL, patient, practitioner, worksheet

Token = Callable[..., str]

CLINICAL = {
    "Patient",
    "RelatedPerson",
    "CareTeam",
    "Condition",
    "Goal",
    "CarePlan",
    "QuestionnaireResponse",
    "Observation",
    "Practitioner",
    "PractitionerRole",
    "AuditEvent",
}
# Tokens that reach no clinical type: no resource scope at all, a scope in the wrong case (scopes are
# case-sensitive), a v2 scope with parameters the server cannot narrow by, content only.
NO_CLINICAL_SCOPE = (
    ("openid fhirUser", None),
    ("launch/patient online_access", "a"),
    ("PATIENT/*.READ", "a"),
    ("patient/*.rs?category=x", "a"),
    ("user/Questionnaire.rs", None),
    ("user/PlanDefinition.rs user/CodeSystem.rs", None),
)
# Tokens confined to A, alone or beside scopes that reach only content or one type.
CONFINED_TO_A = (
    "patient/*.rs",
    "patient/*.cruds",
    "patient/*.rs user/Questionnaire.rs",
    "patient/Goal.rs",
    "patient/CareTeam.rs patient/Patient.rs",
    "patient/QuestionnaireResponse.rs openid",
)
WINDOWS = (
    "/fhir/Questionnaire?_revinclude=QuestionnaireResponse:questionnaire"
    "&_include:iterate=QuestionnaireResponse:subject&_count=100",
    "/fhir/Questionnaire?_revinclude=*&_count=100",
    "/fhir/Goal?_include=*&_revinclude=*&_include:iterate=*&_count=100",
    "/fhir/Practitioner?_revinclude=CareTeam:participant&_include:iterate=CareTeam:subject",
    "/fhir/Practitioner?_revinclude:iterate=CareTeam:participant&_include:iterate=CareTeam:participant",
    "/fhir/Patient?_revinclude=*&_include:iterate=*",
    "/fhir/CareTeam?_include=CareTeam:participant&_include=CareTeam:subject",
    "/fhir/QuestionnaireResponse?_include=QuestionnaireResponse:subject&_revinclude=*",
    "/fhir/Observation?_include=Observation:derived-from&_include=Observation:subject",
    "/fhir/Condition?_revinclude=CarePlan:condition&_include:iterate=CarePlan:care-team",
)
# Searches whose answer would depend on B's data if a chain or `_has` looked at it.
PROBES = (
    "/fhir/CareTeam?participant:Patient.name=Bra",
    "/fhir/CareTeam?participant:Patient.birthdate=1980-02-02",
    "/fhir/CareTeam?subject:Patient.gender=male",
    "/fhir/Questionnaire?_has:QuestionnaireResponse:questionnaire:subject=Patient/b",
    "/fhir/Practitioner?_has:CareTeam:participant:subject=Patient/b",
    "/fhir/Patient?_has:Goal:subject:lifecycle-status=on-hold",
    "/fhir/Patient?_has:AuditEvent:entity:outcome=0",
    "/fhir/Goal?subject:Patient.name:missing=true",
    "/fhir/CareTeam?participant:Patient.name:not=Bravo",
)
SECRETS_OF_B = ("Bravo", "reconcile with brother", "Patient/b", "sam.bravo@example.org")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FHIR_JSON}


async def _put(client: httpx.AsyncClient, admin: str, resource: dict[str, Any]) -> None:
    response = await client.put(
        f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=_auth(admin)
    )
    assert response.status_code in (200, 201), response.text


def _records(owner: str, family: str, goal_text: str) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/{owner}"}
    return [
        patient(
            id=owner,
            family=family,
            birthDate="1980-02-02" if owner == "b" else "1975-07-07",
            gender="male" if owner == "b" else "female",
            telecom=[{"system": "email", "value": f"sam.{family.lower()}@example.org"}],
        ),
        {
            "resourceType": "CareTeam",
            "id": f"team-{owner}",
            "subject": subject,
            "participant": [{"member": subject}, {"member": {"reference": "Practitioner/therapist"}}],
        },
        {
            "resourceType": "Condition",
            "id": f"condition-{owner}",
            "subject": subject,
            "code": {"text": "Major depressive disorder"},
        },
        {
            "resourceType": "Goal",
            "id": f"goal-{owner}",
            "lifecycleStatus": "on-hold" if owner == "b" else "active",
            "description": {"text": goal_text},
            "subject": subject,
        },
        {
            "resourceType": "CarePlan",
            "id": f"plan-{owner}",
            "status": "active",
            "intent": "plan",
            "subject": subject,
            "addresses": [{"reference": f"Condition/condition-{owner}"}],
            "careTeam": [{"reference": f"CareTeam/team-{owner}"}],
            "goal": [{"reference": f"Goal/goal-{owner}"}],
        },
        {
            "resourceType": "QuestionnaireResponse",
            "id": f"response-{owner}",
            "status": "in-progress",
            "questionnaire": f"{WORKSHEET_URL}|1.0.0",
            "subject": subject,
            "item": [{"linkId": "mood", "answer": [{"valueInteger": 3}]}],
        },
    ]


@pytest.fixture
async def world(anonymous_client: httpx.AsyncClient, token: Token) -> httpx.AsyncClient:
    admin = token()
    await _put(anonymous_client, admin, worksheet())
    await _put(anonymous_client, admin, practitioner(id="therapist"))
    for owner, family, goal in (("a", "Adams", "goal of a"), ("b", "Bravo", "reconcile with brother")):
        for resource in _records(owner, family, goal):
            await _put(anonymous_client, admin, resource)
    return anonymous_client


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle, without the OperationOutcome that repeats a parameter it ignored."""
    return [
        entry["resource"]
        for entry in bundle.get("entry", [])
        if entry.get("resource", {}).get("resourceType", "OperationOutcome") != "OperationOutcome"
    ]


def _assert_nothing_of_b(response: httpx.Response) -> None:
    assert response.status_code in (200, 403), response.text
    # The links and an outcome about ignored parameters repeat the request; the resources must be free of B.
    resources = _resources(response.json()) if response.status_code == 200 else []
    for secret in SECRETS_OF_B:
        assert secret not in orjson.dumps(resources).decode(), f"{secret!r} leaked"
    for resource in resources:
        assert not resource["id"].endswith("-b"), resource
        assert resource["id"] != "b", resource


@pytest.mark.parametrize("path", WINDOWS)
@pytest.mark.parametrize(("scope", "patient_id"), NO_CLINICAL_SCOPE)
async def test_no_clinical_scope_gets_no_clinical_resource(
    world: httpx.AsyncClient, token: Token, scope: str, patient_id: str | None, path: str
) -> None:
    claims = {"patient": patient_id} if patient_id else {}
    response = await world.get(path, headers=_auth(token(scope, **claims)))
    if response.status_code == 403:
        return  # the searched type itself is refused
    assert response.status_code == 200, response.text
    found = {resource["resourceType"] for resource in _resources(response.json())}
    assert not found & CLINICAL, f"{scope!r} received {found & CLINICAL}"


@pytest.mark.parametrize("path", WINDOWS + PROBES)
@pytest.mark.parametrize("scope", CONFINED_TO_A)
async def test_token_confined_to_a_learns_nothing_of_b(
    world: httpx.AsyncClient, token: Token, scope: str, path: str
) -> None:
    response = await world.get(path, headers=_auth(token(scope, patient="a")))
    _assert_nothing_of_b(response)


@pytest.mark.parametrize("path", PROBES)
async def test_chains_and_has_count_only_what_the_token_may_search(
    world: httpx.AsyncClient, token: Token, path: str
) -> None:
    """Each probe names something only B has: to a token confined to A, it matches nothing and counts
    nothing, where a token that sees both finds B's records (so the probe does probe)."""
    confined = await world.get(path, headers=_auth(token("patient/*.rs", patient="a")))
    assert confined.status_code == 200, confined.text
    bundle = confined.json()
    if "AuditEvent" in path:
        assert bundle["total"] == 0
        return
    everyone = (await world.get(path, headers=_auth(token("user/*.rs")))).json()
    mine = {r["id"] for r in _resources(bundle)}
    all_ids = {r["id"] for r in _resources(everyone)}
    assert bundle["total"] == len(mine)
    if path.endswith(("missing=true", ":not=Bravo")):
        assert mine <= all_ids
    else:
        assert mine == set() or mine < all_ids
        assert everyone["total"] > bundle["total"] or "Practitioner" in path or "Questionnaire" in path


async def test_audit_trail_is_not_probed_through_has_without_an_audit_scope(
    world: httpx.AsyncClient, token: Token, flush_audit: Callable[[], Awaitable[bool]]
) -> None:
    probe = "/fhir/Patient?_has:AuditEvent:entity:outcome=0"
    await world.get("/fhir/Patient/a", headers=_auth(token("user/*.rs")))  # leaves an AuditEvent about a
    await flush_audit()
    without = (await world.get(probe, headers=_auth(token("user/*.rs")))).json()
    assert without["total"] == 0
    auditor = (await world.get(probe, headers=_auth(token("user/*.rs user/AuditEvent.rs")))).json()
    assert auditor["total"] >= 1


async def test_included_types_need_their_own_read_scope(world: httpx.AsyncClient, token: Token) -> None:
    observations = await world.get(
        "/fhir/Goal?_revinclude=CarePlan:goal&_include:iterate=CarePlan:subject",
        headers=_auth(token("user/Goal.rs")),
    )
    assert {r["resourceType"] for r in _resources(observations.json())} == {"Goal"}
    both = await world.get(
        "/fhir/Goal?_revinclude=CarePlan:goal", headers=_auth(token("user/Goal.rs user/CarePlan.rs"))
    )
    assert {r["resourceType"] for r in _resources(both.json())} == {"Goal", "CarePlan"}


class TestWrites:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("PUT", "/fhir/Practitioner/therapist", practitioner(id="therapist", family="Renamed")),
            ("POST", "/fhir/Practitioner", practitioner(family="New")),
            ("POST", "/fhir/PractitionerRole", {"resourceType": "PractitionerRole", "active": True}),
            ("POST", "/fhir/Questionnaire", worksheet(id="other", version="2.0.0")),
            ("DELETE", "/fhir/Practitioner/therapist", None),
        ],
    )
    async def test_patient_scopes_do_not_write_outside_any_compartment(
        self, world: httpx.AsyncClient, token: Token, engine: AsyncEngine, method: str, path: str, body: Any
    ) -> None:
        before = await _versions(engine)
        writer = _auth(token("patient/*.cruds", patient="a"))
        response = await world.request(method, path, json=body, headers=writer)
        assert response.status_code == 403, response.text
        assert response.json()["issue"][0]["expression"] == [path.split("/")[2]]
        assert await _versions(engine) == before
        # Reading them stays allowed.
        assert (await world.get("/fhir/Practitioner/therapist", headers=writer)).status_code == 200

    async def test_put_answers_alike_for_another_compartments_id_and_an_unused_one(
        self, world: httpx.AsyncClient, token: Token, engine: AsyncEngine
    ) -> None:
        writer = _auth(token("patient/*.cruds", patient="a"))
        before = await _versions(engine)
        answers = []
        for resource_id in ("plan-b", "plan-unused"):
            body = {
                "resourceType": "CarePlan",
                "id": resource_id,
                "status": "active",
                "intent": "plan",
                "subject": {"reference": "Patient/a"},
            }
            direct = await world.put(f"/fhir/CarePlan/{resource_id}", json=body, headers=writer)
            conditional = await world.put(f"/fhir/CarePlan?_id={resource_id}", json=body, headers=writer)
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": body, "request": {"method": "PUT", "url": f"CarePlan/{resource_id}"}}],
            }
            in_bundle = await world.post("/fhir", json=bundle, headers=writer)
            answers.append(
                [
                    (r.status_code, r.text.replace(resource_id, "<id>"))
                    for r in (direct, conditional, in_bundle)
                ]
            )
        assert answers[0] == answers[1]
        assert all(status == 404 for status, _ in answers[0][:2])
        assert await _versions(engine) == before

    async def test_a_refused_delete_names_only_referrers_the_token_may_read(
        self, world: httpx.AsyncClient, token: Token
    ) -> None:
        goals_only = await world.delete("/fhir/Goal/goal-a", headers=_auth(token("user/Goal.cruds")))
        assert goals_only.status_code == 409, goals_only.text
        assert "plan-a" not in goals_only.text
        assert "a resource this token may not read" in goals_only.text
        with_plans = _auth(token("user/Goal.cruds user/CarePlan.rs"))
        assert "CarePlan/plan-a" in (await world.delete("/fhir/Goal/goal-a", headers=with_plans)).text

    async def test_put_still_updates_within_the_compartment(
        self, world: httpx.AsyncClient, token: Token
    ) -> None:
        writer = _auth(token("patient/*.cruds", patient="a"))
        goal = (await world.get("/fhir/Goal/goal-a", headers=writer)).json()
        goal["lifecycleStatus"] = "completed"
        response = await world.put("/fhir/Goal/goal-a", json=goal, headers=writer)
        assert response.status_code == 200, response.text


async def _versions(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        statement = select(func.count()).where(resource_versions.c.resource_type != "AuditEvent")
        return int((await connection.execute(statement)).scalar_one())


async def _audits(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        statement = select(func.count()).where(resource_versions.c.resource_type == "AuditEvent")
        return int((await connection.execute(statement)).scalar_one())


async def test_a_content_search_that_includes_clinical_data_is_audited(
    world: httpx.AsyncClient, token: Token, engine: AsyncEngine, flush_audit: Callable[[], Awaitable[bool]]
) -> None:
    await flush_audit()
    before = await _audits(engine)
    await world.get("/fhir/Questionnaire", headers=_auth(token("user/*.rs")))
    await flush_audit()
    assert await _audits(engine) == before  # reading shared content alone is not recorded
    await world.get(
        "/fhir/Questionnaire?_revinclude=QuestionnaireResponse:questionnaire",
        headers=_auth(token("user/*.rs")),
    )
    await flush_audit()
    assert await _audits(engine) == before + 1


class TestLastCheck:
    """The check on the way out never fires while the queries apply the decision; with the SQL filter taken
    away, it is what keeps B's data in."""

    @pytest.fixture
    def no_sql_filter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(search_storage, "reach_filter", lambda *args, **kwargs: [])

    @pytest.mark.parametrize(
        "path",
        [
            "/fhir/Goal",
            "/fhir/Practitioner?_revinclude=CareTeam:participant",
            "/fhir/Questionnaire?_revinclude=*",
        ],
    )
    async def test_it_withholds_what_the_query_let_through(
        self, world: httpx.AsyncClient, token: Token, no_sql_filter: None, path: str
    ) -> None:
        response = await world.get(path, headers=_auth(token("patient/*.rs", patient="a")))
        assert response.status_code == 500
        assert response.json()["issue"][0]["code"] == "security"
        for secret in SECRETS_OF_B:
            assert secret not in response.text

    async def test_it_lets_allowed_answers_through(self, world: httpx.AsyncClient, token: Token) -> None:
        response = await world.get(
            "/fhir/Goal?_revinclude=*", headers=_auth(token("patient/*.rs", patient="a"))
        )
        assert response.status_code == 200
        assert {r["id"] for r in _resources(response.json())} == {"goal-a", "plan-a"}


@pytest.mark.parametrize("path", ["/fhir/Goal", "/fhir/CareTeam?participant=Practitioner/therapist"])
async def test_an_estimated_total_is_exact_for_a_confined_token(
    world: httpx.AsyncClient, token: Token, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The planner's statistics cover every patient's rows: a confined token gets the count instead."""

    async def planner_guess(*args: object) -> int:
        return 999

    monkeypatch.setattr(search_interaction, "estimate_matches", planner_guess)
    separator = "&" if "?" in path else "?"
    url = f"{path}{separator}_total=estimate&_count=1"
    mine = await world.get(url, headers=_auth(token("patient/*.rs", patient="a")))
    assert mine.json()["total"] == 1
    everyone = await world.get(url, headers=_auth(token("user/*.rs")))
    assert everyone.json()["total"] == 999


class TestTimingWindow:
    """Another patient's record must not answer slower or faster than no record: the read by id (and vread)
    of a confined token keeps the other compartment out in SQL, so that the row is never fetched
    (`python -m benchmarks.timing` measures the difference)."""

    @pytest.mark.parametrize("path", ["{id}", "{id}/_history/1"])
    async def test_a_foreign_row_is_not_fetched(
        self, anonymous_client: httpx.AsyncClient, engine: AsyncEngine, token: Token, path: str
    ) -> None:
        admin = {"Authorization": f"Bearer {token()}", **FHIR_JSON}
        for id_ in ("a", "b"):
            assert (
                await anonymous_client.put(f"/fhir/Patient/{id_}", json=patient(id=id_), headers=admin)
            ).is_success
        goal = {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": {"text": "Rebuild one friendship"},
            "subject": {"reference": "Patient/b"},
        }
        created = await anonymous_client.post("/fhir/Goal", json=goal, headers=admin)
        assert created.status_code == 201, created.text
        confined = {"Authorization": f"Bearer {token('patient/*.rs', patient='a')}"}
        statements: list[str] = []

        def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", note)
        try:
            url = "/fhir/Goal/" + path.format(id=created.json()["id"])
            response = await anonymous_client.get(url, headers=confined)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", note)
        assert response.status_code == 404
        [read] = [s for s in statements if "FROM resource" in s and "content" in s]
        assert "patient_id =" in read, read
