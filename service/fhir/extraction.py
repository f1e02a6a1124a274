"""Search index values, extracted from a resource when it is written.

Each supported search parameter's FHIRPath expression, as the specification gives it, is evaluated on the
resource with `fhirpathpy` (R4 model) and the results are turned into typed values following the search
parameter types of https://hl7.org/fhir/R4/search.html#ptypes. Expressions are compiled once per resource
type; only the parameters of the resource's own type (and the common `Resource` ones) are evaluated.

Three rewrites keep the specification's expressions evaluable without a server behind them:

- The parts of a shared definition that belong to other types are dropped (`CarePlan.subject... | Goal...`),
  and `Resource.` roots become the resource type (fhirpathpy does not treat `Resource` as a supertype).
- `X.where(resolve() is Patient)` becomes `X` plus a check on the referenced type, read from the literal
  reference (`Patient/123`, `https://host/fhir/Patient/123`, by `mappings.references`) or from
  `Reference.type`.
- `X as T` and `X.as(T)` become `X.ofType(T)`: FHIRPath's `as` fails on a collection of more than one item
  (`Goal.target.due as date` with two targets), which R5 fixed in the same way.

Every value maps to one row of an index table, all keyed by `(resource_type, resource_id, param)`, except
those of `_id` and `_lastUpdated`, which the resource's own row holds (`service.storage.indexing.rows`):

- `TokenValue` → `search_token`: `system` (NULL: none), `code` (NULL: a text-only row), `text` (normalised,
  for `:text`).
- `StringValue` → `search_string`: `value` (normalised: case folded, accents stripped), `exact` (as written).
- `ReferenceValue` → `search_reference`: `target_type`, `target_id`, `url` (NULL for a reference to this
  server), `version` (of a canonical or a `_history` reference).
- `DateValue` → `search_date`: `low`, `high` (timestamptz; the half-open range `[low, high)`, NULL unbounded).
- `UriValue` → `search_uri`: `uri`.
- `NumberValue` → `search_number`: `value` (numeric), `system`, `code` (the unit of a Quantity).

Usage:

    >>> extract_index_values({"resourceType": "Patient", "id": "p1", "gender": "female"})
    [TokenValue(param='_id', system=None, code='p1', text=None), TokenValue(param='gender', ...)]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from mappings.references import parse_reference as read_reference
from service.fhir.search_parameters import COMMON_BASE, SearchParameter, parameters_for


@dataclass(frozen=True, slots=True)
class TokenValue:
    """A code with its system, from a Coding, CodeableConcept, Identifier, ContactPoint or primitive.

    `text` holds the normalised `CodeableConcept.text`, `Coding.display` or `Identifier.type.text` that
    `:text` searches; a CodeableConcept's own text gets a row of its own with no system and no code.
    """

    param: str
    system: str | None
    code: str | None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class StringValue:
    """One string, or one part of a HumanName or Address; `value` is normalised, `exact` as written."""

    param: str
    value: str
    exact: str


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """A literal reference or a canonical URL.

    A reference to this server has `url` None and the target's type and id. Any other absolute reference
    keeps its `url` (and the type and id read from it, when it has the RESTful shape). A canonical keeps its
    `url` and `|version`, and the target type when the parameter allows only one.
    """

    param: str
    target_type: str | None
    target_id: str | None
    url: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class DateValue:
    """A half-open instant range `[low, high)` in UTC, widened to the precision of the value.

    `2024-05` is `[2024-05-01T00:00Z, 2024-06-01T00:00Z)`. None is unbounded: a Period without an end has
    `high` None.
    """

    param: str
    low: datetime | None
    high: datetime | None


@dataclass(frozen=True, slots=True)
class UriValue:
    param: str
    uri: str


@dataclass(frozen=True, slots=True)
class NumberValue:
    """A number, or a Quantity's value with its unit `system` and `code` (the `unit` when it has no code)."""

    param: str
    value: Decimal
    system: str | None = None
    code: str | None = None


IndexValue = TokenValue | StringValue | ReferenceValue | DateValue | UriValue | NumberValue


# Pure functions of a string that recur across the resources of a Bundle (every resource of a transaction
# has the same `meta.lastUpdated`, most carry the same security label displays): cached, and bounded.
@lru_cache(maxsize=4096)
def normalize_string(value: str) -> str:
    """Fold case and strip accents, so `Müller` and `MULLER` index and search alike.

    https://hl7.org/fhir/R4/search.html#string: matches are case- and accent-insensitive.
    """
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


# --- dates -------------------------------------------------------------------------------------------

_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


@lru_cache(maxsize=4096)
def date_range(value: str) -> tuple[datetime, datetime | None]:
    """The half-open UTC range `[low, high)` a FHIR date, dateTime or instant stands for.

    The range is as wide as the precision of the value (https://hl7.org/fhir/R4/search.html#date): a year,
    a month, a day, a minute, a second, or the stated fraction of a second. A value without a timezone is
    taken as UTC. `high` is None past year 9999. Raises `ValueError` for anything else.
    """
    match = _DATE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a FHIR date/dateTime/instant: {value!r}")
    try:
        return _range(match)
    except ValueError as error:
        raise ValueError(f"not a valid date/dateTime/instant: {value!r} ({error})") from None


def _range(parts: re.Match[str]) -> tuple[datetime, datetime | None]:
    tz = _timezone(parts["tz"])
    year = int(parts["year"])
    if parts["month"] is None:
        low = datetime(year, 1, 1, tzinfo=tz)
        return _utc(low), _utc_or_none(lambda: low.replace(year=year + 1))
    month = int(parts["month"])
    if parts["day"] is None:
        low = datetime(year, month, 1, tzinfo=tz)
        return _utc(low), _utc_or_none(
            lambda: low.replace(year=year + 1, month=1) if month == 12 else low.replace(month=month + 1)
        )
    day = datetime(year, month, int(parts["day"]), tzinfo=tz)
    if parts["hour"] is None:
        return _utc(day), _utc_or_none(lambda: day + timedelta(days=1))
    hour, minute = int(parts["hour"]), int(parts["minute"])
    if parts["second"] is None:
        low = day.replace(hour=hour, minute=minute)
        return _utc(low), _utc_or_none(lambda: low + timedelta(minutes=1))
    fraction = parts["fraction"] or ""
    # datetime stops at microseconds; finer digits cannot narrow the range further.
    digits = min(len(fraction), 6)
    microsecond = int(fraction[:digits].ljust(6, "0")) if digits else 0
    low = day.replace(hour=hour, minute=minute, second=int(parts["second"]), microsecond=microsecond)
    width = timedelta(microseconds=10 ** (6 - digits)) if digits else timedelta(seconds=1)
    return _utc(low), _utc_or_none(lambda: low + width)


def _timezone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"not a timezone offset: {text!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01 at a positive offset is before datetime.min in UTC.
        return datetime.min.replace(tzinfo=UTC)


def _utc_or_none(compute: Callable[[], datetime]) -> datetime | None:
    try:
        return compute().astimezone(UTC)
    except (OverflowError, ValueError):
        return None


# --- references ------------------------------------------------------------------------------------


# The references of a Bundle's resources repeat (a hundred responses name one Patient); the result is frozen.
@lru_cache(maxsize=4096)
def parse_reference(reference: str, *, base_url: str | None = None) -> ReferenceValue | None:
    """Index a literal reference read by `mappings.references.parse_reference`.

    `Type/id[/_history/v]` and `[base]/Type/id[/_history/v]` give the target's type and id; any other
    absolute reference (`urn:uuid:`, a URL without the RESTful shape) is matched as a whole. None for a
    contained `#id`, and for a malformed reference (`Patient/A/Patient/B`), which writes refuse: nothing is
    read from it. The result's `param` is empty; the caller sets it. With `base_url`, an absolute reference
    to this server is returned as a local one (`url` None).
    """
    parsed = read_reference(reference)
    if parsed.kind == "relative":
        return ReferenceValue("", parsed.resource_type, parsed.resource_id, version=parsed.version)
    if parsed.kind != "absolute":
        return None
    local = base_url is not None and parsed.base is not None and parsed.base == base_url.rstrip("/")
    return ReferenceValue(
        "",
        parsed.resource_type,
        parsed.resource_id,
        url=None if local else reference,
        version=parsed.version,
    )


def parse_canonical(value: str) -> tuple[str, str | None]:
    """Split `url|version` (https://hl7.org/fhir/R4/references.html#canonical)."""
    url, _, version = value.partition("|")
    return url, version or None


# --- compilation -----------------------------------------------------------------------------------

_RESOLVE_IS = re.compile(r"\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)")
_AS_OPERATOR = re.compile(r"\s+as\s+([A-Za-z]+)")
_AS_FUNCTION = re.compile(r"\.as\(")
_ROOT = re.compile(r"\(*\s*([A-Za-z]+)")

# An evaluator returns (FHIR type name or None, JSON value) pairs.
_Evaluator = Callable[[dict[str, Any]], list[tuple[str | None, Any]]]


@dataclass(frozen=True, slots=True)
class CompiledPart:
    """One `|` part of an expression, ready to evaluate; `reference_type` comes from `resolve() is T`."""

    expression: str
    evaluate: _Evaluator
    reference_type: str | None


@dataclass(frozen=True, slots=True)
class CompiledParameter:
    """A parameter with the parts of its expression that apply to one resource type."""

    parameter: SearchParameter
    parts: tuple[CompiledPart, ...]


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on its top-level `|` (not inside parentheses or string literals)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    index = 0
    while index < len(expression):
        char = expression[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:index].strip())
            start = index + 1
        index += 1
    parts.append(expression[start:].strip())
    return [part for part in parts if part]


def rewrite_expression(expression: str, resource_type: str) -> list[tuple[str, str | None]]:
    """The parts of `expression` that apply to `resource_type`, rewritten for evaluation (see module doc).

    Each part comes with the resource type its references must point to (from `resolve() is T`), if any.
    Raises `ValueError` for a `resolve()` in any other form.
    """
    rewritten: list[tuple[str, str | None]] = []
    for part in split_union(expression):
        root = _ROOT.match(part)
        if root is None:
            continue
        if root[1] in (COMMON_BASE, "DomainResource"):
            part = part[: root.start(1)] + resource_type + part[root.end(1) :]
        elif root[1] != resource_type:
            continue
        reference_type = None
        resolve = _RESOLVE_IS.search(part)
        if resolve is not None:
            reference_type = resolve[1]
            part = part[: resolve.start()] + part[resolve.end() :]
        if "resolve(" in part:
            raise ValueError(f"unsupported use of resolve() in {expression!r}")
        part = _AS_FUNCTION.sub(".ofType(", _AS_OPERATOR.sub(r".ofType(\1)", part))
        rewritten.append((part, reference_type))
    return rewritten


def compile_fhirpath(expression: str) -> _Evaluator:
    """Compile with fhirpathpy and the R4 model (choice types, `ofType`, `where` ...)."""
    compiled = fhirpathpy.compile(expression, models["r4"], {"returnRawData": True})

    def evaluate(resource: dict[str, Any]) -> list[tuple[str | None, Any]]:
        return [
            (node.path, node.data) if isinstance(node, ResourceNode) else (None, node)
            for node in compiled(resource, None)
        ]

    return evaluate


_PLAIN_PATH = re.compile(r"[A-Z][A-Za-z]*(?:\.[a-z][A-Za-z]*)+")


def plain_path_type(expression: str) -> str | None:
    """The R4 element type a plain member path such as `Patient.name` selects, or None for another path.

    A backbone element's type is its path (`CarePlan.activity`), as fhirpathpy names it. Paths through a
    choice type (`Observation.effective`) or an element the model does not know give None.
    """
    if not _PLAIN_PATH.fullmatch(expression):
        return None
    model = models["r4"]
    path2type: dict[str, str] = model["path2Type"]
    choices: dict[str, Any] = model["choiceTypePaths"]
    context, *members = expression.split(".")
    element_type: str | None = None
    for index, member in enumerate(members):
        path = f"{context}.{member}"
        if path in choices:
            return None
        element_type = path2type.get(path)
        if element_type is None:
            if not any(key.startswith(path + ".") for key in path2type):
                return None
            element_type = path
        elif element_type[:1].islower() and index < len(members) - 1:
            return None
        context = element_type
    return element_type


def compile_plain_path(expression: str) -> _Evaluator | None:
    """A fast evaluator for a plain member path such as `QuestionnaireResponse.subject`, or None.

    Most parameters are plain paths; walking the JSON directly costs a fraction of a fhirpathpy call, and
    the R4 model gives the same element types fhirpathpy reports (a test compares the two on every served
    type). Anything else is left to fhirpathpy.
    """
    element_type = plain_path_type(expression)
    if element_type is None:
        return None
    root, *members = expression.split(".")
    if len(members) == 1:
        return _one_member(root, members[0], element_type)

    def evaluate(resource: dict[str, Any]) -> list[tuple[str | None, Any]]:
        if resource.get("resourceType") != root:
            return []
        current: list[Any] = [resource]
        for member in members:
            following: list[Any] = []
            for item in current:
                if isinstance(item, dict):
                    value = item.get(member)
                    if isinstance(value, list):
                        following.extend(v for v in value if v is not None)
                    elif value is not None:
                        following.append(value)
            current = following
        # Like fhirpathpy, drop elements that hold nothing but extensions.
        return [
            (element_type, item)
            for item in current
            if not (isinstance(item, dict) and list(item) == ["extension"])
        ]

    return evaluate


def _one_member(root: str, member: str, element_type: str) -> _Evaluator:
    """`compile_plain_path` for `Type.member`, most parameters: the same results, without the walk."""

    def evaluate(resource: dict[str, Any]) -> list[tuple[str | None, Any]]:
        value = resource.get(member)
        if value is None or resource.get("resourceType") != root:
            return []
        items = value if isinstance(value, list) else (value,)
        return [
            (element_type, item)
            for item in items
            if item is not None and not (isinstance(item, dict) and list(item) == ["extension"])
        ]

    return evaluate


@cache
def is_canonical(resource_type: str, code: str) -> bool:
    """Whether a reference parameter of a type points with `canonical` elements (`url|version`).

    `QuestionnaireResponse.questionnaire` and `CarePlan.instantiatesCanonical` are: they are searched by URL.
    """
    parameter = parameters_for(resource_type)[code]
    return any(
        plain_path_type(expression) == "canonical"
        for expression, _ in rewrite_expression(parameter.expression, resource_type)
    )


def compile_parameter(
    parameter: SearchParameter, resource_type: str, *, plain_paths: bool = True
) -> CompiledParameter:
    """Compile the parts of a parameter's expression that apply to `resource_type`.

    With `plain_paths` False every part goes through fhirpathpy, even a plain member path.
    """
    parts = []
    for expression, reference_type in rewrite_expression(parameter.expression, resource_type):
        evaluate = (compile_plain_path(expression) if plain_paths else None) or compile_fhirpath(expression)
        parts.append(CompiledPart(expression, evaluate, reference_type))
    return CompiledParameter(parameter, tuple(parts))


@cache
def compiled_parameters(resource_type: str, *, plain_paths: bool = True) -> tuple[CompiledParameter, ...]:
    """The supported parameters of a served type, compiled once per type (see `compile_parameter`)."""
    compiled = (
        compile_parameter(parameter, resource_type, plain_paths=plain_paths)
        for parameter in parameters_for(resource_type).values()
    )
    return tuple(item for item in compiled if item.parts)


# --- extraction ------------------------------------------------------------------------------------


def extract_index_values(resource: dict[str, Any], *, base_url: str | None = None) -> list[IndexValue]:
    """Every index value of a resource of a served type, without duplicates, in parameter order.

    `base_url` is this server's FHIR base (`https://host/fhir`): absolute references to it are indexed as
    local ones. Raises `KeyError` for a resource type that is not served.
    """
    return extract_with(compiled_parameters(resource["resourceType"]), resource, base_url=base_url)


def extract_with(
    compiled: Iterable[CompiledParameter], resource: dict[str, Any], *, base_url: str | None = None
) -> list[IndexValue]:
    """`extract_index_values` with the given compiled parameters (custom ones, or fhirpathpy only)."""
    values: dict[IndexValue, None] = {}
    for item in compiled:
        parameter = item.parameter
        for part in item.parts:
            for fhir_type, data in part.evaluate(resource):
                for value in _convert(parameter, fhir_type, data, base_url):
                    if part.reference_type is None or (
                        isinstance(value, ReferenceValue) and value.target_type == part.reference_type
                    ):
                        values[value] = None
    return list(values)


def _convert(
    parameter: SearchParameter, fhir_type: str | None, data: Any, base_url: str | None
) -> Iterator[IndexValue]:
    kind = parameter.type
    code = parameter.code
    if kind == "token":
        yield from _tokens(code, fhir_type, data)
    elif kind == "string":
        yield from _strings(code, fhir_type, data)
    elif kind == "reference":
        yield from _references(parameter, fhir_type, data, base_url)
    elif kind == "date":
        yield from _dates(code, data)
    elif kind == "uri":
        if isinstance(data, str) and data:
            yield UriValue(code, data)
    else:
        yield from _numbers(code, data)


_CONTACT_POINT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def _text(value: Any) -> str | None:
    return normalize_string(value) or None if isinstance(value, str) else None


def _tokens(param: str, fhir_type: str | None, data: Any) -> Iterator[TokenValue]:
    if isinstance(data, bool):
        yield TokenValue(param, None, "true" if data else "false")
        return
    if isinstance(data, str):
        if data:
            yield TokenValue(param, None, data)
        return
    if isinstance(data, int | float | Decimal):
        yield TokenValue(param, None, str(data))
        return
    if not isinstance(data, dict):
        return
    kind = fhir_type if fhir_type in ("CodeableConcept", "Coding", "Identifier", "ContactPoint") else None
    if kind is None:
        if "coding" in data or set(data) == {"text"}:
            kind = "CodeableConcept"
        elif "value" in data and data.get("system") in _CONTACT_POINT_SYSTEMS:
            kind = "ContactPoint"
        elif "value" in data:
            kind = "Identifier"
        elif "code" in data or "system" in data:
            kind = "Coding"
        else:
            # A primitive's extension-only sibling (`_status`) or an element with nothing to index.
            return
    if kind == "CodeableConcept":
        for coding in data.get("coding", []):
            yield from _tokens(param, "Coding", coding)
        if text := _text(data.get("text")):
            yield TokenValue(param, None, None, text)
    elif kind == "Coding":
        if data.get("system") or data.get("code"):
            yield TokenValue(param, data.get("system"), data.get("code"), _text(data.get("display")))
    elif kind == "Identifier":
        if data.get("system") or data.get("value"):
            identifier_type = data.get("type")
            type_text = _text(identifier_type.get("text")) if isinstance(identifier_type, dict) else None
            yield TokenValue(param, data.get("system"), data.get("value"), type_text)
    elif data.get("value"):
        # ContactPoint: the value is the code and ContactPoint.system (phone, email ...) the system, so both
        # `phone=555` and `telecom=phone|555` find it.
        yield TokenValue(param, data.get("system"), data["value"])


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(param: str, fhir_type: str | None, data: Any) -> Iterator[StringValue]:
    if isinstance(data, str):
        if data.strip():
            yield StringValue(param, normalize_string(data), data)
        return
    if not isinstance(data, dict):
        return
    is_address = fhir_type == "Address" or (fhir_type is None and not {"family", "given"} & data.keys())
    keys = _ADDRESS_PARTS if is_address else _NAME_PARTS
    for key in keys:
        value = data.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.strip():
                yield StringValue(param, normalize_string(item), item)


def _references(
    parameter: SearchParameter, fhir_type: str | None, data: Any, base_url: str | None
) -> Iterator[ReferenceValue]:
    code = parameter.code
    if isinstance(data, str):
        # canonical or uri elements (QuestionnaireResponse.questionnaire, CarePlan.instantiatesCanonical)
        if data:
            url, version = parse_canonical(data)
            target_type = parameter.targets[0] if len(parameter.targets) == 1 else None
            yield ReferenceValue(code, target_type, None, url=url, version=version)
        return
    if not isinstance(data, dict):
        return
    literal = data.get("reference")
    declared_type = data.get("type") if isinstance(data.get("type"), str) else None
    if not isinstance(literal, str):
        # Logical references (identifier only) cannot be followed or matched by id.
        return
    parsed = parse_reference(literal, base_url=base_url)
    if parsed is None:
        return
    yield ReferenceValue(
        code,
        parsed.target_type or declared_type,
        parsed.target_id,
        url=parsed.url,
        version=parsed.version,
    )


def _dates(param: str, data: Any) -> Iterator[DateValue]:
    if isinstance(data, str):
        try:
            low, high = date_range(data)
        except ValueError:
            return
        yield DateValue(param, low, high)
    elif isinstance(data, dict):
        if "start" in data or "end" in data:
            yield _period(param, data)
        for event in data.get("event", []):
            # Timing: each event is a date of its own.
            yield from _dates(param, event)


def _period(param: str, period: dict[str, Any]) -> DateValue:
    low: datetime | None = None
    high: datetime | None = None
    try:
        if isinstance(period.get("start"), str):
            low = date_range(period["start"])[0]
        if isinstance(period.get("end"), str):
            high = date_range(period["end"])[1]
    except ValueError:
        pass
    return DateValue(param, low, high)


def _numbers(param: str, data: Any) -> Iterator[NumberValue]:
    if isinstance(data, bool):
        return
    if isinstance(data, int | float | Decimal | str):
        number = _decimal(data)
        if number is not None:
            yield NumberValue(param, number)
    elif isinstance(data, dict) and "value" in data:
        number = _decimal(data["value"])
        if number is not None:
            yield NumberValue(param, number, data.get("system"), data.get("code") or data.get("unit"))


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
