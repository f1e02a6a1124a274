"""A FHIR search query, parsed and checked against the supported search parameters.

https://hl7.org/fhir/R4/search.html. `parse_search` turns the query's (name, value) pairs into a
`SearchQuery`: an AND of clauses (a repeated parameter is two clauses), each an OR of typed values (a comma
separates them). Parameter types, modifiers and prefixes follow the specification:

- token (`#token`): `code`, `system|code`, `|code`, `system|`; modifiers `:not`, `:text`.
- string (`#string`): case- and accent-insensitive starts-with; `:exact`, `:contains`.
- reference (`#reference`): `id`, `Type/id`, an absolute URL (one of this server is read as `Type/id`), the
  type modifier (`subject:Patient=123`); canonical references (`questionnaire=url|version`).
- date (`#date`, `#prefix`): prefixes `eq ne gt lt ge le sa eb ap`, a value stands for the range of its
  precision; see `DateSearch.matches`, the executable statement of the rules the SQL must follow.
- uri (`#uri`): exact, `:below`. number and quantity (`#number`, `#quantity`): prefixes, implied precision.
- `:missing` on every parameter; one level of chaining (`subject:Patient.identifier=...`) and of reverse
  chaining (`_has:CarePlan:subject:status=active`).
- Result parameters (`#return`): `_sort`, `_count`, `_total`, `_include`/`_revinclude` (`:iterate`, `*`),
  `_summary`, `_elements`; and `_cursor`, this server's opaque keyset paging position.

An unknown or unsupported parameter (or modifier) is ignored and reported in `SearchQuery.unknown`, or
rejected with `strict=True` (`Prefer: handling=strict`, https://hl7.org/fhir/R4/search.html#errors). A
malformed value is always rejected. Both raise `InvalidSearch` naming the parameter.

Usage:

    >>> query = parse_search("CarePlan", [("subject", "Patient/1"), ("date", "ge2024")])
    >>> render_query(query)
    'subject=Patient/1&date=ge2024'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal, cast, get_args
from urllib.parse import quote, urlencode

from service.errors import InvalidSearch, Issue
from service.fhir.extraction import (
    date_range,
    is_canonical,
    normalize_string,
    parse_canonical,
    parse_reference,
)
from service.fhir.search_parameters import SearchParameter, parameters_for, served_types

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
TotalMode = Literal["none", "estimate", "accurate"]
SummaryMode = Literal["true", "false", "data", "count"]

PREFIXES: frozenset[str] = frozenset(get_args(Prefix))
DEFAULT_COUNT = 20
MAX_COUNT = 500
# Each value becomes one bound parameter or more, and the driver takes at most 32767 in a statement: a
# search naming more values than a client needs (a page of ids is at most MAX_COUNT) is refused up front.
MAX_VALUES = 1000

_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ELEMENT = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]+")

# Handled by the HTTP layer (content negotiation), so neither reported nor repeated in links.
_TRANSPORT_PARAMETERS = frozenset({"_format", "_pretty"})
_RESULT_PARAMETERS = frozenset(
    {"_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude", "_cursor"}
)
_MODIFIERS: Mapping[str, frozenset[str]] = {
    "token": frozenset({"not", "text"}),
    "string": frozenset({"exact", "contains"}),
    "reference": frozenset(),
    "date": frozenset(),
    "uri": frozenset({"below"}),
    "number": frozenset(),
    "quantity": frozenset(),
}
_SORTABLE = frozenset({"token", "string", "date"})


# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenSearch:
    """`code` (any system), `system|code`, `|code` (no system) or `system|` (any code of the system).

    `match_system` is True when the value had a `|`: then `system` must equal the indexed system, None
    included.
    """

    code: str | None
    system: str | None = None
    match_system: bool = False


@dataclass(frozen=True, slots=True)
class StringSearch:
    """A string as written (for `:exact`) and normalised (for starts-with, `:contains` and token `:text`)."""

    value: str
    normalized: str


@dataclass(frozen=True, slots=True)
class ReferenceSearch:
    """A reference to look for.

    With `url` None it is a resource of this server: `target_id` of `target_type` (None: any of the
    parameter's targets). With `url` set it is an external reference or, for a canonical parameter, a
    canonical URL, with `version` when the value had `|version`.
    """

    target_type: str | None
    target_id: str | None
    url: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class DateSearch:
    """A date with its prefix: the half-open range `[low, high)` its precision stands for.

    `margin` widens the range for `ap`: 10% of the distance between now and the value, at least a day.
    """

    prefix: Prefix
    low: datetime
    high: datetime | None
    margin: timedelta = timedelta(0)

    def matches(self, low: datetime | None, high: datetime | None) -> bool:
        """Whether an indexed range `[low, high)` (None: unbounded) satisfies this search value.

        https://hl7.org/fhir/R4/search.html#prefix, read with half-open ranges: `eq` the search range
        contains the target range; `gt`/`lt` the range above/below the search value intersects it; `ge`/`le`
        either; `sa`/`eb` the target range lies wholly after/before; `ap` the ranges overlap once the
        search range is widened by `margin`; `ne` is not `eq`.
        """
        target_low = low or _MIN
        target_high = high or _MAX
        search_low, search_high = self.low, self.high or _MAX
        contains = search_low <= target_low and target_high <= search_high
        prefix = self.prefix
        if prefix == "eq":
            return contains
        if prefix == "ne":
            return not contains
        if prefix == "gt":
            return target_high > search_high
        if prefix == "lt":
            return target_low < search_low
        if prefix == "ge":
            return target_high > search_high or contains
        if prefix == "le":
            return target_low < search_low or contains
        if prefix == "sa":
            return target_low >= search_high
        if prefix == "eb":
            return target_high <= search_low
        return target_low < _shift(search_high, self.margin) and target_high > _shift(
            search_low, -self.margin
        )


@dataclass(frozen=True, slots=True)
class NumberSearch:
    """A number (or a quantity's value, with its unit `system` and `code`) with its prefix.

    `[low, high)` is the range implied by the value's precision: `100` stands for `[99.5, 100.5)`.
    """

    prefix: Prefix
    value: Decimal
    low: Decimal
    high: Decimal
    system: str | None = None
    code: str | None = None

    def matches(self, value: Decimal) -> bool:
        """Whether an indexed number satisfies this value (https://hl7.org/fhir/R4/search.html#number)."""
        prefix = self.prefix
        if prefix == "eq":
            return self.low <= value < self.high
        if prefix == "ne":
            return not self.low <= value < self.high
        if prefix in ("gt", "sa"):
            return value > self.value
        if prefix in ("lt", "eb"):
            return value < self.value
        if prefix == "ge":
            return value >= self.value
        if prefix == "le":
            return value <= self.value
        margin = abs(self.value) / 10
        return self.value - margin <= value <= self.value + margin


@dataclass(frozen=True, slots=True)
class UriSearch:
    uri: str


SearchValue = TokenSearch | StringSearch | ReferenceSearch | DateSearch | NumberSearch | UriSearch


# --- clauses -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParameterClause:
    """One parameter occurrence: its values are ORed.

    `modifier` is as written: `not`, `text`, `exact`, `contains`, `below`, `missing`, or for a reference
    the type modifier (already applied to each value's `target_type`). With `:missing`, `missing` says
    whether the parameter must be absent and `values` is empty. With `:not`, a resource matches when it
    has no value equal to any of `values`, including when it has none at all.
    """

    parameter: SearchParameter
    values: tuple[SearchValue, ...]
    modifier: str | None = None
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class ChainClause:
    """`subject:Patient.name=peter`: the resource refers through `parameter` to a resource of one of
    `target_types` that matches `clause` (same code and type on each of them)."""

    parameter: SearchParameter
    target_types: tuple[str, ...]
    clause: ParameterClause


@dataclass(frozen=True, slots=True)
class HasClause:
    """`_has:CarePlan:subject:status=active`: some `source_type` resource refers to the resource through
    `reference` and matches `clause`."""

    source_type: str
    reference: SearchParameter
    clause: ParameterClause


Clause = ParameterClause | ChainClause | HasClause


@dataclass(frozen=True, slots=True)
class SortKey:
    parameter: SearchParameter
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=CarePlan:subject:Patient` (or `_revinclude`); `parameter` None is the wildcard `*`.

    `source_type` is the type whose references are followed; None for `_revinclude=*` (any type).
    """

    source_type: str | None
    parameter: SearchParameter | None
    target_type: str | None = None
    iterate: bool = False


@dataclass(frozen=True, slots=True)
class UnknownParameter:
    """A parameter that was ignored, with the reason; it becomes a warning in the searchset Bundle."""

    name: str
    value: str
    reason: str

    def issue(self) -> Issue:
        return Issue(
            f"Search parameter '{self.name}' was ignored: {self.reason}",
            expression=self.name,
            code="not-supported",
            severity="warning",
        )


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed search: `clauses` are ANDed. `normalized` holds the accepted parameters for the links."""

    resource_type: str
    clauses: tuple[Clause, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = DEFAULT_COUNT
    total: TotalMode | None = None
    summary: SummaryMode | None = None
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    cursor: str | None = None
    unknown: tuple[UnknownParameter, ...] = ()
    normalized: tuple[tuple[str, str], ...] = ()

    def warnings(self) -> tuple[Issue, ...]:
        """One warning issue per ignored parameter, for the searchset's OperationOutcome."""
        return tuple(unknown.issue() for unknown in self.unknown)


# --- parsing -------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """A parameter the server does not support: ignored, or rejected in strict mode."""


def _invalid(name: str, value: str, reason: str) -> InvalidSearch:
    return InvalidSearch(
        Issue(f"Invalid value {value!r} for search parameter '{name}': {reason}", expression=name)
    )


class _Malformed(Exception):
    """A value that cannot be understood; always rejected."""


def parse_search(
    resource_type: str,
    parameters: Iterable[tuple[str, str]],
    *,
    strict: bool = False,
    base_url: str | None = None,
    default_count: int = DEFAULT_COUNT,
    max_count: int = MAX_COUNT,
    now: datetime | None = None,
) -> SearchQuery:
    """Parse the (name, value) pairs of a search on `resource_type` (https://hl7.org/fhir/R4/search.html).

    **Parameters:**

    * `strict`: reject unknown or unsupported parameters (`Prefer: handling=strict`) instead of reporting.
    * `base_url`: this server's FHIR base; absolute references to it are read as `Type/id`.
    * `default_count`, `max_count`: page size when `_count` is absent, and its upper bound.
    * `now`: the reference time of the `ap` prefix (the current time by default).

    Raises `InvalidSearch` (400) naming the parameter, also for a search of more than `MAX_VALUES` values
    in all; `KeyError` for a type that is not served.
    """
    parser = _Parser(
        resource_type,
        strict=strict,
        base_url=base_url,
        count=min(default_count, max_count),
        max_count=max_count,
        now=now or datetime.now(UTC),
    )
    values = 0
    for name, value in parameters:
        values += value.count(",") + 1
        if values > MAX_VALUES:
            raise InvalidSearch(
                Issue(
                    f"the search names more than {MAX_VALUES} values (at '{name}'); split it into several",
                    expression=name,
                    code="too-costly",
                )
            )
        parser.add(name, value)
    return parser.result()


def render_query(query: SearchQuery, *, cursor: str | None = None) -> str:
    """The accepted parameters as a query string, for the searchset's `self`/`next` links.

    Ignored parameters are left out (https://hl7.org/fhir/R4/search.html#errors). `cursor` is appended as
    `_cursor` (the next page's position, or `query.cursor` for the page itself).
    """
    pairs = list(query.normalized)
    if cursor is not None:
        pairs.append(("_cursor", cursor))
    return urlencode(pairs, safe=":|,/$*", quote_via=quote)


@dataclass
class _Parser:
    resource_type: str
    strict: bool
    base_url: str | None
    count: int
    max_count: int
    now: datetime
    parameters: Mapping[str, SearchParameter] = field(init=False)
    clauses: list[Clause] = field(default_factory=list)
    filters: list[tuple[str, str]] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count_given: bool = False
    total: TotalMode | None = None
    summary: SummaryMode | None = None
    elements: list[str] = field(default_factory=list)
    includes: list[tuple[Include, str, str]] = field(default_factory=list)
    revincludes: list[tuple[Include, str, str]] = field(default_factory=list)
    cursor: str | None = None
    unknown: list[UnknownParameter] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parameters = parameters_for(self.resource_type)

    def add(self, name: str, value: str) -> None:
        if value == "" or name in _TRANSPORT_PARAMETERS:
            return
        try:
            self._add(name, value)
        except _Unsupported as unsupported:
            reason = str(unsupported)
            if self.strict:
                raise InvalidSearch(
                    Issue(
                        f"Unknown or unsupported search parameter '{name}': {reason}",
                        expression=name,
                        code="not-supported",
                    )
                ) from None
            self.unknown.append(UnknownParameter(name, value, reason))
        except _Malformed as malformed:
            raise _invalid(name, value, str(malformed)) from None

    def _add(self, name: str, value: str) -> None:
        base_name = name.split(":", 1)[0]
        if base_name in _RESULT_PARAMETERS:
            self._result_parameter(name, base_name, value)
        elif base_name == "_has":
            self.clauses.append(self._has(name, value))
            self.filters.append((name, value))
        else:
            self.clauses.append(self._filter(self.resource_type, name, value))
            self.filters.append((name, value))

    # -- filters

    def _filter(self, resource_type: str, name: str, value: str) -> Clause:
        head, dot, chained = name.partition(".")
        code, _, modifier = head.partition(":")
        parameters = parameters_for(resource_type)
        parameter = parameters.get(code)
        if parameter is None:
            raise _Unsupported(f"not a search parameter of {resource_type}")
        if not dot:
            return self._clause(resource_type, parameter, modifier or None, value)
        if parameter.type != "reference":
            raise _Malformed(f"'{code}' is not a reference parameter, so it cannot be chained")
        if "." in chained:
            raise _Unsupported("chains deeper than one level are not supported")
        chained_code, _, chained_modifier = chained.partition(":")
        if modifier:
            if modifier not in parameter.targets:
                raise _Malformed(f"'{modifier}' is not a resource type '{code}' can refer to")
            candidates: tuple[str, ...] = (modifier,)
        else:
            candidates = parameter.targets
        target_types = tuple(
            target
            for target in candidates
            if target in served_types() and chained_code in parameters_for(target)
        )
        if not target_types:
            raise _Unsupported(f"no type that '{code}' refers to has a search parameter '{chained_code}'")
        first = parameters_for(target_types[0])[chained_code]
        target_types = tuple(t for t in target_types if parameters_for(t)[chained_code].type == first.type)
        clause = self._clause(target_types[0], first, chained_modifier or None, value)
        return ChainClause(parameter, target_types, clause)

    def _has(self, name: str, value: str) -> HasClause:
        parts = name.split(":")
        if len(parts) > 4 and parts[3] == "_has":
            raise _Unsupported("nested _has is not supported")
        if len(parts) not in (4, 5) or not all(parts[1:]):
            raise _Malformed("expected _has:Type:reference:parameter")
        _, source_type, reference_code, code, *modifier = parts
        if source_type not in served_types():
            raise _Unsupported(f"'{source_type}' is not a served resource type")
        reference = parameters_for(source_type).get(reference_code)
        if reference is None:
            raise _Unsupported(f"not a search parameter of {source_type}: '{reference_code}'")
        if reference.type != "reference" or self.resource_type not in reference.targets:
            raise _Malformed(f"{source_type}.{reference_code} does not refer to {self.resource_type}")
        if "." in code:
            raise _Unsupported("chained parameters inside _has are not supported")
        parameter = parameters_for(source_type).get(code)
        if parameter is None:
            raise _Unsupported(f"not a search parameter of {source_type}: '{code}'")
        clause = self._clause(source_type, parameter, modifier[0] if modifier else None, value)
        return HasClause(source_type, reference, clause)

    def _clause(
        self, resource_type: str, parameter: SearchParameter, modifier: str | None, value: str
    ) -> ParameterClause:
        if modifier == "missing":
            if value not in ("true", "false"):
                raise _Malformed(":missing takes true or false")
            return ParameterClause(parameter, (), modifier, missing=value == "true")
        type_modifier = None
        if modifier is not None and modifier not in _MODIFIERS[parameter.type]:
            if parameter.type == "reference" and _TYPE_NAME.fullmatch(modifier):
                if modifier not in parameter.targets:
                    raise _Malformed(f"'{modifier}' is not a resource type '{parameter.code}' can refer to")
                type_modifier = modifier
            else:
                raise _Unsupported(f"modifier ':{modifier}' is not supported on a {parameter.type} parameter")
        values = tuple(
            self._value(resource_type, parameter, modifier, type_modifier, item)
            for item in _split(value, ",")
        )
        return ParameterClause(parameter, values, modifier)

    def _value(
        self,
        resource_type: str,
        parameter: SearchParameter,
        modifier: str | None,
        type_modifier: str | None,
        raw: str,
    ) -> SearchValue:
        if raw == "":
            raise _Malformed("empty value in a comma-separated list")
        kind = parameter.type
        if kind == "token":
            if modifier == "text":
                return _string(_unescape(raw))
            return _token(raw)
        if kind == "string":
            return _string(_unescape(raw))
        if kind == "reference":
            return self._reference(resource_type, parameter, type_modifier, raw)
        if kind == "date":
            return _date(raw, self.now)
        if kind == "uri":
            return UriSearch(_unescape(raw))
        return _number(raw, quantity=kind == "quantity")

    def _reference(
        self, resource_type: str, parameter: SearchParameter, type_modifier: str | None, raw: str
    ) -> ReferenceSearch:
        value = _unescape(raw)
        absolute = "://" in value or value.startswith("urn:")
        if is_canonical(resource_type, parameter.code) and absolute:
            url, version = parse_canonical(value)
            return ReferenceSearch(None, None, url=url, version=version)
        if absolute:
            parsed = parse_reference(value, base_url=self.base_url)
            if parsed is None or parsed.url is not None:
                target = parsed.target_type if parsed is not None else None
                self._check_target(parameter, type_modifier, target)
                return ReferenceSearch(target, None if parsed is None else parsed.target_id, url=value)
            self._check_target(parameter, type_modifier, parsed.target_type)
            return ReferenceSearch(parsed.target_type, parsed.target_id)
        if "/" in value:
            parsed = parse_reference(value)
            if parsed is None or parsed.target_type is None:
                raise _Malformed("expected an id, Type/id or an absolute URL")
            self._check_target(parameter, type_modifier, parsed.target_type)
            return ReferenceSearch(parsed.target_type, parsed.target_id)
        if not _ID.fullmatch(value):
            raise _Malformed("not a resource id")
        target_type = type_modifier or (parameter.targets[0] if len(parameter.targets) == 1 else None)
        return ReferenceSearch(target_type, value)

    @staticmethod
    def _check_target(parameter: SearchParameter, type_modifier: str | None, target_type: str | None) -> None:
        if target_type is None:
            return
        if type_modifier is not None and target_type != type_modifier:
            raise _Malformed(f"a {target_type} reference does not match the type modifier :{type_modifier}")
        if target_type not in parameter.targets:
            raise _Malformed(f"'{parameter.code}' cannot refer to a {target_type}")

    # -- result parameters

    def _result_parameter(self, name: str, base_name: str, value: str) -> None:
        modifier = name[len(base_name) + 1 :] if name != base_name else None
        if base_name in ("_include", "_revinclude"):
            if modifier not in (None, "iterate", "recurse"):
                raise _Unsupported(f"modifier ':{modifier}' is not supported on {base_name}")
            include = self._include(value, iterate=modifier is not None, reverse=base_name == "_revinclude")
            normalized_name = base_name + (":iterate" if modifier else "")
            target = self.revincludes if base_name == "_revinclude" else self.includes
            target.append((include, normalized_name, value))
            return
        if modifier is not None:
            raise _Unsupported(f"{base_name} takes no modifier")
        if base_name == "_count":
            if not value.isdigit():
                raise _Malformed("expected a non-negative integer")
            self.count = min(int(value), self.max_count)
            self.count_given = True
        elif base_name == "_total":
            if value not in get_args(TotalMode):
                raise _Malformed("expected none, estimate or accurate")
            self.total = cast(TotalMode, value)
        elif base_name == "_summary":
            if value == "text":
                raise _Unsupported("_summary=text is not supported")
            if value not in get_args(SummaryMode):
                raise _Malformed("expected true, false, data or count")
            self.summary = cast(SummaryMode, value)
        elif base_name == "_elements":
            elements = [item.strip() for item in value.split(",")]
            if not all(_ELEMENT.fullmatch(item) for item in elements):
                raise _Malformed("expected comma-separated element names")
            self.elements.extend(e for e in elements if e not in self.elements)
        elif base_name == "_sort":
            self._sort(value)
        else:
            self.cursor = value

    def _sort(self, value: str) -> None:
        ignored = []
        for key in value.split(","):
            descending = key.startswith("-")
            code = key[1:] if descending else key
            if not code:
                raise _Malformed("empty sort key")
            parameter = self.parameters.get(code)
            if parameter is None or parameter.type not in _SORTABLE:
                ignored.append(key)
                continue
            self.sort.append(SortKey(parameter, descending))
        if ignored:
            raise _Unsupported(f"cannot sort on {', '.join(ignored)}")

    def _include(self, value: str, *, iterate: bool, reverse: bool) -> Include:
        if value == "*":
            return Include(None if reverse else self.resource_type, None, None, iterate)
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise _Malformed("expected SourceType:parameter[:TargetType] or *")
        source_type, code, *target = parts
        if source_type not in served_types():
            raise _Unsupported(f"'{source_type}' is not a served resource type")
        if not reverse and not iterate and source_type != self.resource_type:
            raise _Unsupported(f"_include of {source_type} needs :iterate on a {self.resource_type} search")
        if code == "*":
            return Include(source_type, None, None, iterate)
        parameter = parameters_for(source_type).get(code)
        if parameter is None:
            raise _Unsupported(f"not a search parameter of {source_type}: '{code}'")
        if parameter.type != "reference":
            raise _Malformed(f"{source_type}.{code} is not a reference parameter")
        target_type = target[0] if target else None
        if target_type is not None and target_type not in parameter.targets:
            raise _Malformed(f"{source_type}.{code} cannot refer to a {target_type}")
        if reverse and not iterate and self.resource_type not in parameter.targets:
            raise _Malformed(f"{source_type}.{code} does not refer to {self.resource_type}")
        return Include(source_type, parameter, target_type, iterate)

    def result(self) -> SearchQuery:
        normalized = list(self.filters)
        if self.sort:
            normalized.append(
                ("_sort", ",".join(("-" if k.descending else "") + k.parameter.code for k in self.sort))
            )
        if self.count_given:
            normalized.append(("_count", str(self.count)))
        if self.total is not None:
            normalized.append(("_total", self.total))
        if self.summary is not None:
            normalized.append(("_summary", self.summary))
        if self.elements:
            normalized.append(("_elements", ",".join(self.elements)))
        normalized.extend((name, value) for _, name, value in self.includes)
        normalized.extend((name, value) for _, name, value in self.revincludes)
        return SearchQuery(
            resource_type=self.resource_type,
            clauses=tuple(self.clauses),
            sort=tuple(self.sort),
            count=self.count,
            total=self.total,
            summary=self.summary,
            elements=tuple(self.elements),
            includes=tuple(include for include, _, _ in self.includes),
            revincludes=tuple(include for include, _, _ in self.revincludes),
            cursor=self.cursor,
            unknown=tuple(self.unknown),
            normalized=tuple(normalized),
        )


# --- values --------------------------------------------------------------------------------------


def _split(value: str, separator: str, limit: int = -1) -> list[str]:
    """Split on `separator` where no backslash escapes it (https://hl7.org/fhir/R4/search.html#escaping)."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            current.append(value[index : index + 2])
            index += 2
            continue
        if char == separator and limit != len(parts):
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


_ESCAPED = re.compile(r"\\([\\,|$])")


def _unescape(value: str) -> str:
    return _ESCAPED.sub(r"\1", value)


def _token(raw: str) -> TokenSearch:
    parts = _split(raw, "|", limit=1)
    if len(parts) == 1:
        return TokenSearch(_unescape(raw))
    system, code = (_unescape(part) or None for part in parts)
    if system is None and code is None:
        raise _Malformed("expected code, system|code, |code or system|")
    return TokenSearch(code, system, match_system=True)


def _string(value: str) -> StringSearch:
    normalized = normalize_string(value)
    if not normalized:
        raise _Malformed("empty string")
    return StringSearch(value, normalized)


_PREFIXED = re.compile(r"([a-z]{2})?(.*)", re.DOTALL)


def _prefix(raw: str) -> tuple[Prefix, str]:
    match = _PREFIXED.fullmatch(raw)
    assert match is not None  # the pattern matches any string
    prefix, rest = match.groups()
    if prefix is None:
        return "eq", raw
    if prefix not in PREFIXES:
        raise _Malformed(f"unknown prefix '{prefix}'")
    return cast(Prefix, prefix), rest


def _date(raw: str, now: datetime) -> DateSearch:
    prefix, text = _prefix(raw)
    try:
        low, high = date_range(text)
    except ValueError:
        raise _Malformed(
            "expected a date, dateTime or instant such as 2024, 2024-05-01 or 2024-05-01T10:00:00Z"
        ) from None
    margin = timedelta(0)
    if prefix == "ap":
        if now < low:
            gap = low - now
        elif high is not None and now >= high:
            gap = now - high
        else:
            gap = timedelta(0)
        margin = max(gap / 10, timedelta(days=1))
    return DateSearch(prefix, low, high, margin)


def _number(raw: str, *, quantity: bool) -> NumberSearch:
    prefix, text = _prefix(raw)
    system = code = None
    if quantity:
        parts = [_unescape(part) for part in _split(text, "|", limit=2)]
        if len(parts) == 3:
            text, system, code = parts[0], parts[1] or None, parts[2] or None
        elif len(parts) != 1:
            raise _Malformed("expected number|system|code")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Malformed("not a number") from None
    if not value.is_finite():
        raise _Malformed("not a number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    half = Decimal(5).scaleb(exponent - 1)
    return NumberSearch(prefix, value, value - half, value + half, system, code)


def _shift(value: datetime, delta: timedelta) -> datetime:
    try:
        return value + delta
    except OverflowError:
        return _MAX if delta > timedelta(0) else _MIN
