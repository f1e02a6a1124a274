"""Bundle checks, processing order and placeholder rewriting, without a database.

https://hl7.org/fhir/R4/http.html#transaction and #trules.
"""

from typing import Any

import pytest

from service.errors import BadRequest, NotFound, PayloadTooLarge
from service.fhir.transaction import processing_order, read_bundle, rewrite_references


def entry(method: str, url: str, resource: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"request": {"method": method, "url": url}, **extra}
    if resource is not None:
        body["resource"] = resource
    return body


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


PATIENT = {"resourceType": "Patient"}
PARAMETERS = {"resourceType": "Parameters"}


class TestReadBundle:
    def test_reads_urls_and_conditions(self) -> None:
        read = read_bundle(
            bundle(
                entry("PUT", "Patient?identifier=urn:mrn|1", PATIENT),
                entry("GET", "Patient/p1/_history/2"),
                entry("DELETE", "http://testserver/fhir/Patient/p2"),
            ),
            max_entries=10,
            base_url="http://testserver/fhir",
        )

        put, get, delete = read.entries
        assert (put.resource_type, put.resource_id, put.query) == (
            "Patient",
            None,
            (("identifier", "urn:mrn|1"),),
        )
        assert put.conditional
        assert (get.resource_id, get.version_id) == ("p1", 2)
        assert (delete.resource_type, delete.resource_id) == ("Patient", "p2")

    def test_entry_faults_stay_on_the_entry(self) -> None:
        read = read_bundle(bundle({"resource": PATIENT}, entry("GET", "Spaceship/1")), max_entries=10)

        assert isinstance(read.entries[0].error, BadRequest)
        assert isinstance(read.entries[1].error, NotFound)

    def test_too_many_entries(self) -> None:
        with pytest.raises(PayloadTooLarge):
            read_bundle(bundle(*[entry("GET", "Patient/a")] * 3), max_entries=2)

    def test_same_resource_twice_in_a_transaction(self) -> None:
        with pytest.raises(BadRequest):
            read_bundle(
                bundle(entry("DELETE", "Patient/a"), entry("PATCH", "Patient/a", PARAMETERS)), max_entries=9
            )

    def test_same_resource_twice_in_a_batch_is_allowed(self) -> None:
        read = read_bundle(
            bundle(entry("DELETE", "Patient/a"), entry("DELETE", "Patient/a"), kind="batch"), max_entries=9
        )

        assert [e.error for e in read.entries] == [None, None]

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (entry("POST", "Patient/1", PATIENT), "POST takes the type only"),
            (entry("PUT", "Patient", PATIENT), "needs an id"),
            (entry("GET", "https://elsewhere.example/Patient/1"), "not a URL of this server"),
            (entry("GET", "Patient/$everything"), "operations"),
            (entry("GET", "Patient/a b"), "not a valid id"),
        ],
    )
    def test_bad_request_urls(self, raw: dict[str, Any], reason: str) -> None:
        error = read_bundle(bundle(raw), max_entries=9).entries[0].error

        assert error is not None
        assert reason in error.issues[0].diagnostics


class TestProcessingOrder:
    def test_delete_post_put_patch_get(self) -> None:
        read = read_bundle(
            bundle(
                entry("GET", "Patient/a"),
                entry("PATCH", "Patient/b", {"resourceType": "Parameters"}),
                entry("PUT", "Patient/c", PATIENT),
                entry("POST", "Patient", PATIENT),
                entry("DELETE", "Patient/d"),
                entry("POST", "Patient", PATIENT),
            ),
            max_entries=9,
        )

        assert [e.index for e in processing_order(read.entries)] == [4, 3, 5, 1, 2, 0]


class TestRewriteReferences:
    def test_nested_references_uris_and_narrative(self) -> None:
        resource = {
            "resourceType": "CareTeam",
            "text": {"div": '<div><a href="urn:uuid:1">the patient</a></div>'},
            "subject": {"reference": "urn:uuid:1"},
            "participant": [{"member": {"reference": "urn:uuid:2", "display": "urn:uuid:1 as text"}}],
            "extension": [{"url": "http://example.org/x", "valueUri": "urn:uuid:2"}],
        }

        rewrite_references(resource, {"urn:uuid:1": "Patient/p", "urn:uuid:2": "Practitioner/t"})

        assert resource["subject"] == {"reference": "Patient/p"}
        assert resource["participant"][0]["member"]["reference"] == "Practitioner/t"
        assert resource["participant"][0]["member"]["display"] == "urn:uuid:1 as text"
        assert resource["extension"][0]["valueUri"] == "Practitioner/t"
        assert 'href="Patient/p"' in resource["text"]["div"]
