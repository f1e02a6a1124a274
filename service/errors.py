"""Every error that leaves the server, as one exception tree.

Each class carries its HTTP status and its OperationOutcome issue code, so the single handler in
`service.api.handlers` can render any of them without a lookup table:

    FhirError (500, exception)
    ├── BadRequest (400, invalid)
    │   ├── InvalidResource (400, structure)
    │   ├── InvalidCode (400, code-invalid)
    │   └── InvalidSearch (400, invalid)
    ├── Unauthorized (401, login)
    ├── Forbidden (403, forbidden)
    ├── NotFound (404, not-found)
    ├── MethodNotAllowed (405, not-supported)
    ├── NotAcceptable (406, not-supported)
    ├── Conflict (409, conflict)
    ├── Gone (410, deleted)
    ├── PreconditionFailed (412, conflict)
    ├── PayloadTooLarge (413, too-costly)
    ├── UnsupportedMediaType (415, not-supported)
    └── Unprocessable (422, processing)
        └── BusinessRule (422, business-rule)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem, as it will appear in `OperationOutcome.issue`.

    `expression` is a FHIRPath-like location such as `QuestionnaireResponse.item[2].answer[0]`;
    `code` overrides the issue code of the exception class that carries the issue.
    """

    diagnostics: str
    expression: str | None = None
    code: str | None = None
    severity: Severity = "error"

    def to_fhir(self, default_code: str) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code or default_code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


class FhirError(Exception):
    """Base for every error that is answered with an OperationOutcome."""

    status_code: ClassVar[int] = 500
    issue_code: ClassVar[str] = "exception"

    def __init__(self, *issues: Issue | str, headers: dict[str, str] | None = None) -> None:
        normalised = tuple(Issue(i) if isinstance(i, str) else i for i in issues)
        if not normalised:
            normalised = (Issue(type(self).__name__),)
        super().__init__("; ".join(i.diagnostics for i in normalised))
        self.issues = normalised
        self.headers = headers or {}

    def to_operation_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues, default_code=self.issue_code)


def operation_outcome(issues: tuple[Issue, ...] | list[Issue], *, default_code: str) -> dict[str, Any]:
    """Build an OperationOutcome resource (as a plain dict) from issues."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [issue.to_fhir(default_code) for issue in issues],
    }


class BadRequest(FhirError):
    status_code, issue_code = 400, "invalid"


class InvalidResource(BadRequest):
    """The body is not a valid FHIR resource of the expected type (structure, cardinality, datatype)."""

    issue_code = "structure"


class InvalidCode(BadRequest):
    """A code element holds a value outside its required ValueSet."""

    issue_code = "code-invalid"


class InvalidSearch(BadRequest):
    """A search parameter value cannot be understood."""


class Unauthorized(FhirError):
    status_code, issue_code = 401, "login"


class Forbidden(FhirError):
    status_code, issue_code = 403, "forbidden"


class NotFound(FhirError):
    status_code, issue_code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status_code, issue_code = 405, "not-supported"


class NotAcceptable(FhirError):
    status_code, issue_code = 406, "not-supported"


class Conflict(FhirError):
    status_code, issue_code = 409, "conflict"


class Gone(FhirError):
    status_code, issue_code = 410, "deleted"


class PreconditionFailed(FhirError):
    status_code, issue_code = 412, "conflict"


class PayloadTooLarge(FhirError):
    status_code, issue_code = 413, "too-costly"


class UnsupportedMediaType(FhirError):
    status_code, issue_code = 415, "not-supported"


class Unprocessable(FhirError):
    status_code, issue_code = 422, "processing"


class BusinessRule(Unprocessable):
    issue_code = "business-rule"


class Withheld(FhirError):
    """The last check before a response leaves refused a resource that the access decision does not allow.

    It never fires while the queries apply the decision; if one does not, the client gets this instead of
    another patient's data.
    """

    status_code, issue_code = 500, "security"


class ServiceUnavailable(FhirError):
    """The database cannot be reached or is overloaded: nothing the client did, and worth a retry."""

    status_code, issue_code = 503, "transient"
