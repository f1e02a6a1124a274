"""SMART on FHIR scopes: what a token may do.

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html. Scopes name a context (`patient`,
`user`, `system`), a resource type (or `*`) and permissions: SMART v2 letters `c r u d s` (create, read,
update, delete, search) or the v1 words `read` (= `rs`), `write` (= `cud`) and `*` (= `cruds`). A v2 scope
with search parameters (`patient/Observation.rs?category=…`) is not granted here: the server cannot yet
narrow results by them, and granting it whole would give more than was asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Context = Literal["patient", "user", "system"]
Permission = Literal["c", "r", "u", "d", "s"]

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z*]+)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_V2_ORDER = "cruds"


@dataclass(frozen=True, slots=True)
class Scope:
    context: Context
    resource_type: str  # "*" for every type
    permissions: frozenset[str]

    def allows(self, resource_type: str, permission: Permission) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions


def parse_scope(text: str) -> Scope | None:
    """One scope string, or `None` for anything that is not a resource scope (`openid`, `launch/patient`…)."""
    match = _SCOPE.match(text)
    if match is None:
        return None
    context, resource_type, permissions = match.groups()
    if permissions in _V1:
        letters = _V1[permissions]
    elif _is_v2(permissions):
        letters = permissions
    else:
        return None
    return Scope(context, resource_type, frozenset(letters))  # type: ignore[arg-type]


def _is_v2(permissions: str) -> bool:
    # v2 letters appear at most once and in the order c, r, u, d, s.
    positions = [_V2_ORDER.find(letter) for letter in permissions]
    return bool(permissions) and -1 not in positions and positions == sorted(set(positions))


def parse_scopes(text: str) -> tuple[Scope, ...]:
    return tuple(scope for part in text.split() if (scope := parse_scope(part)) is not None)
