"""Types shared by the validators of this package.

A ValueSet is handed to the validators as the set of `(system, code)` pairs of its expansion, through a
lookup the caller provides (https://hl7.org/fhir/R4/valueset.html#expansion), so that this package never
performs I/O itself.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias

JSON: TypeAlias = dict[str, Any]

Codes: TypeAlias = frozenset[tuple[str | None, str]]


class ValueSetLookup(Protocol):
    """Resolve a ValueSet canonical (`url` or `url|version`) to its codes.

    Returns the `(system, code)` pairs of the expansion, or `None` when the ValueSet is unknown to the
    caller; the validator then reports a warning instead of refusing the answer.

    Usage:
    ```python
    codes = {"http://loinc.org/vs/LL358-3": frozenset({("http://loinc.org", "LA6568-5")})}
    validate_response(response, questionnaire, value_sets=codes.get)
    ```
    """

    def __call__(self, canonical: str, /) -> Codes | None: ...  # pragma: no cover
