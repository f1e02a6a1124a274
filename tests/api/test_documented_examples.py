"""The examples of the API documentation work as documented: after `PUT /fhir/Patient/example` with the
Patient example, the example of every served type is accepted by a create on the real service."""

import httpx

from service.fhir.examples import EXAMPLES
from service.fhir.registry import RESOURCE_DEFINITIONS
from service.fhir.transaction_examples import BATCH_EXAMPLE, TREATMENT_PLAN_TRANSACTION
from tests.factories import FHIR_JSON


async def test_every_example_is_accepted_once_the_example_patient_exists(client: httpx.AsyncClient) -> None:
    patient = await client.put("/fhir/Patient/example", json=EXAMPLES["Patient"], headers=FHIR_JSON)
    assert patient.status_code == 201, patient.text
    refused = {}
    for spec in RESOURCE_DEFINITIONS:
        if spec.name in EXAMPLES and spec.name != "Patient":
            created = await client.post(f"/fhir/{spec.name}", json=EXAMPLES[spec.name], headers=FHIR_JSON)
            if created.status_code != 201:
                refused[spec.name] = created.text
    assert refused == {}


async def test_the_documented_bundles_answer_as_described(client: httpx.AsyncClient) -> None:
    await client.put("/fhir/Patient/example", json=EXAMPLES["Patient"], headers=FHIR_JSON)
    transaction = await client.post("/fhir", json=TREATMENT_PLAN_TRANSACTION, headers=FHIR_JSON)
    assert transaction.status_code == 200, transaction.text
    batch = await client.post("/fhir", json=BATCH_EXAMPLE, headers=FHIR_JSON)
    assert batch.status_code == 200, batch.text
    # The batch example shows that one failing entry leaves the other alone.
    assert [e["response"]["status"][:3] for e in batch.json()["entry"]] == ["201", "404"]
