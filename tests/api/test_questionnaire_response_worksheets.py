"""Every IPT worksheet over HTTP: a generated valid response is stored, a mutated one is refused at its node.

Spec: https://hl7.org/fhir/R4/questionnaireresponse.html#link, through the real write path (the Questionnaire
and its ValueSets looked up in PostgreSQL, the write rules, the 422 OperationOutcome). The responses come
from the generator and the single mutations of the pure property test
(`tests/fhir/validation/test_questionnaire_response_properties.py`), drawn with a fixed seed so that a
failure reproduces; the pure test explores many more examples without a database.
"""

import copy
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mappings.content import load_content
from tests.factories import FHIR_JSON, patient
from tests.fhir.validation.test_questionnaire_response_properties import (
    FORMS,
    MUTATIONS,
    Lookup,
    _applicable,
    valid_responses,
)

JSON = dict[str, Any]
CONTENT = load_content()
WORKSHEETS = [r for r in CONTENT if r["resourceType"] == "Questionnaire"]


def _draw(form: JSON, lookup: Lookup) -> tuple[JSON, JSON, tuple[str, str]]:
    """A valid response and a copy with one mutation, with the (expression, code) it must be refused at.

    The last of the examples drawn is taken: Hypothesis starts with the simplest ones.
    """
    found: list[tuple[JSON, JSON, tuple[str, str]]] = []
    mutations = sorted(name for name in MUTATIONS if _applicable(form, name))

    @settings(
        max_examples=10,
        derandomize=True,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def draw(data: st.DataObject) -> None:
        valid = data.draw(valid_responses(form, lookup, ("completed",)))
        mutated = copy.deepcopy(valid)
        expected = MUTATIONS[data.draw(st.sampled_from(mutations))](data.draw, mutated, form, lookup)
        if expected is not None:
            found.append((valid, mutated, expected))

    draw()
    assert found, f"no mutation applies to {form['id']}"
    return found[-1]


def _dependencies(form: JSON) -> list[JSON]:
    """The ValueSets the worksheet's answers are bound to, and their CodeSystems."""

    def walk(items: list[JSON]) -> list[str]:
        return [c for i in items for c in [i.get("answerValueSet"), *walk(i.get("item") or [])] if c]

    value_sets = [r for r in CONTENT if r["resourceType"] == "ValueSet" and r["url"] in walk(form["item"])]
    systems = {i.get("system") for vs in value_sets for i in vs.get("compose", {}).get("include", [])}
    return [r for r in CONTENT if r["resourceType"] == "CodeSystem" and r["url"] in systems] + value_sets


async def _put(client: httpx.AsyncClient, resource: JSON) -> None:
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    response = await client.put(url, json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text


async def _versions(client: httpx.AsyncClient) -> int:
    bundle = (await client.get("/fhir/QuestionnaireResponse/_history", params={"_count": 500})).json()
    return len(bundle.get("entry", []))


@pytest.mark.parametrize("form", WORKSHEETS, ids=[w["id"] for w in WORKSHEETS])
async def test_each_worksheet_accepts_a_valid_response_and_refuses_a_mutated_one(
    client: httpx.AsyncClient, form: JSON
) -> None:
    _, lookup = FORMS[f"ipt-{form['id']}"]
    valid, mutated, (expression, code) = _draw(form, lookup)
    await _put(client, patient(id="p1"))
    for resource in [*_dependencies(form), form]:
        await _put(client, resource)
    about = {"subject": {"reference": "Patient/p1"}, "authored": "2024-05-31T10:00:00Z"}

    accepted = await client.post("/fhir/QuestionnaireResponse", json={**valid, **about}, headers=FHIR_JSON)
    assert accepted.status_code == 201, accepted.text

    refused = await client.post("/fhir/QuestionnaireResponse", json={**mutated, **about}, headers=FHIR_JSON)
    assert refused.status_code == 422, refused.text
    problems = [
        (issue["expression"][0], issue["code"])
        for issue in refused.json()["issue"]
        if issue["severity"] == "error"
    ]
    assert (expression, code) in problems, problems
    assert await _versions(client) == 1
