"""Validate a QuestionnaireResponse against its Questionnaire.

Implements the link between the two resources (https://hl7.org/fhir/R4/questionnaireresponse.html#link),
the item rules of https://hl7.org/fhir/R4/questionnaire.html (answer types, `required`, `repeats`,
`answerOption`, `answerValueSet`, `enableWhen`/`enableBehavior`, `maxLength`), the invariant qrs-1, the
core extensions `minValue`, `maxValue`, `minLength`, `questionnaire-minOccurs` and `questionnaire-maxOccurs`
(https://hl7.org/fhir/R4/extensibility-registry.html), and the status lifecycle of
https://hl7.org/fhir/R4/valueset-questionnaire-answers-status.html.

Every problem becomes one `Issue` whose `expression` names the exact node (for example
`QuestionnaireResponse.item[2].item[0].answer[0]`) and whose diagnostics a portal can show next to the field.
All problems are collected; nothing stops at the first one.

Rules that only make sense for a finished form (required items, lengths, bounds, occurrence counts,
answers to disabled items) are errors when `status` is `completed` or `amended` and warnings otherwise,
because an `in-progress` response may legitimately be incomplete.

Usage:
```python
issues = validate_response(response, questionnaire, value_sets=lookup)
if any(issue.severity == "error" for issue in issues):
    raise Unprocessable(*issues)
```
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final

from service.errors import Issue, Severity
from service.fhir.validation._types import JSON, Codes, ValueSetLookup

__all__ = [
    "ROOT",
    "STATUSES",
    "check_answer",
    "check_status_transition",
    "item_label",
    "validate_response",
]

ROOT: Final = "QuestionnaireResponse"

STATUSES: Final = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
_FINISHED: Final = frozenset({"completed", "amended"})

# Allowed status changes; `None` is the create. A completed response changes only by being amended or
# withdrawn (https://hl7.org/fhir/R4/codesystem-questionnaire-answers-status.html).
_TRANSITIONS: Final[dict[str | None, frozenset[str]]] = {
    None: frozenset({"in-progress", "completed", "stopped"}),
    "in-progress": frozenset({"in-progress", "completed", "stopped", "entered-in-error"}),
    "stopped": frozenset({"stopped", "in-progress", "completed", "entered-in-error"}),
    "completed": frozenset({"amended", "entered-in-error"}),
    "amended": frozenset({"amended", "entered-in-error"}),
    "entered-in-error": frozenset(),
}

EXT_MIN_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_MIN_LENGTH: Final = "http://hl7.org/fhir/StructureDefinition/minLength"
EXT_MIN_OCCURS: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"
EXT_MAX_OCCURS: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"

# item.type -> the answer value[x] names it accepts (https://hl7.org/fhir/R4/questionnaire.html#item-types).
_ANSWER_KEYS: Final[dict[str, frozenset[str]]] = {
    "boolean": frozenset({"valueBoolean"}),
    "decimal": frozenset({"valueDecimal"}),
    "integer": frozenset({"valueInteger"}),
    "date": frozenset({"valueDate"}),
    "dateTime": frozenset({"valueDateTime"}),
    "time": frozenset({"valueTime"}),
    "string": frozenset({"valueString"}),
    "text": frozenset({"valueString"}),
    "url": frozenset({"valueUri"}),
    "choice": frozenset({"valueCoding"}),
    "open-choice": frozenset({"valueCoding", "valueString"}),
    "attachment": frozenset({"valueAttachment"}),
    "reference": frozenset({"valueReference"}),
    "quantity": frozenset({"valueQuantity"}),
}

_EXPECTED: Final[dict[str, str]] = {
    "boolean": "yes or no (valueBoolean)",
    "decimal": "a number (valueDecimal)",
    "integer": "a whole number (valueInteger)",
    "date": "a date (valueDate)",
    "dateTime": "a date and time (valueDateTime)",
    "time": "a time of day (valueTime)",
    "string": "text (valueString)",
    "text": "text (valueString)",
    "url": "a web address (valueUri)",
    "choice": "one of the listed options (valueCoding)",
    "open-choice": "one of the listed options (valueCoding) or free text (valueString)",
    "attachment": "an attachment (valueAttachment)",
    "reference": "a reference (valueReference)",
    "quantity": "a quantity (valueQuantity)",
}

_NO_ANSWER_TYPES: Final = frozenset({"group", "display"})
_LENGTH_KEYS: Final = frozenset({"valueString", "valueUri"})

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_DATE_RE: Final = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?")
_DATETIME_RE: Final = re.compile(
    rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    rf"(T{_TIME}(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
_TIME_RE: Final = re.compile(_TIME)
_INT32: Final = 2**31


def item_label(item: JSON) -> str:
    """Name a Questionnaire item for a person: its text (shortened) and its linkId."""
    text = item.get("text")
    return _label(str(item.get("linkId", "?")), text if isinstance(text, str) else None)


# The checks name an item several times each, and every response to a form names the same items.
@lru_cache(maxsize=4096)
def _label(link_id: str, text: str | None) -> str:
    if text is None or not text.strip():
        return f"linkId {link_id}"
    text = " ".join(text.split())
    if len(text) > 80:
        text = text[:77].rstrip() + "..."
    return f"'{text}' (linkId {link_id})"


def validate_response(
    response: JSON, questionnaire: JSON, *, value_sets: ValueSetLookup | None = None
) -> list[Issue]:
    """Check a QuestionnaireResponse against the Questionnaire it answers.

    Both are plain JSON dicts that have already passed structural validation. Returns every issue found,
    in document order; an empty list (or warnings only) means the response is acceptable.

    **Parameters:**

    * **response** - the QuestionnaireResponse.
    * **questionnaire** - the Questionnaire its `questionnaire` canonical resolved to.
    * **value_sets** - resolves `answerValueSet` canonicals; an unresolvable one gives a warning.
    """
    validator = _Validator(questionnaire, value_sets=value_sets, finished=response.get("status") in _FINISHED)
    validator.check_header(response)
    validator.check_items(response.get("item") or [])
    return validator.issues


def check_answer(
    item: JSON,
    answer: JSON,
    *,
    expression: str = f"{ROOT}.item[0].answer[0]",
    value_sets: ValueSetLookup | None = None,
) -> list[Issue]:
    """Check one answer against its Questionnaire item: value type, format, options and bounds.

    Used where answers are moved between responses (for example when pre-filling from an earlier one), to
    keep only those that are still acceptable.
    """
    validator = _Validator({}, value_sets=value_sets, finished=True)
    validator.check_answer(item, answer, expression)
    return validator.issues


def check_status_transition(previous: str | None, new: str) -> list[Issue]:
    """Check a status change of a QuestionnaireResponse; `previous` is `None` on create.

    `in-progress` -> `completed` -> `amended`, any of them -> `entered-in-error`, and `in-progress` ->
    `stopped`. A completed response changes only by becoming `amended` (or `entered-in-error`), and an
    `entered-in-error` one does not change at all.
    """
    expression = f"{ROOT}.status"
    if new not in STATUSES:
        return [
            Issue(
                f"Status '{new}' is not a QuestionnaireResponse status (allowed: {', '.join(STATUSES)})",
                expression,
                code="code-invalid",
            )
        ]
    if previous is not None and previous not in _TRANSITIONS:
        # The stored status cannot be judged; refusing would lock the resource forever.
        return []
    if new in _TRANSITIONS[previous]:
        return []
    if previous is None:
        message = (
            f"A new QuestionnaireResponse cannot start as '{new}'; use in-progress, completed or stopped"
        )
    elif previous == "entered-in-error":
        message = "A QuestionnaireResponse marked entered-in-error can no longer be changed"
    elif previous in _FINISHED:
        message = (
            f"A {previous} QuestionnaireResponse can only change by becoming 'amended' "
            f"(or 'entered-in-error'), not '{new}'"
        )
    else:
        allowed = ", ".join(sorted(_TRANSITIONS[previous]))
        message = f"Status cannot change from '{previous}' to '{new}' (allowed: {allowed})"
    return [Issue(message, expression, code="business-rule")]


@dataclass(eq=False)
class _Node:
    """One response item, matched (or not) to its Questionnaire item."""

    item: JSON
    path: str
    parent: _Node | None
    definition: JSON | None = None
    problem: Issue | None = None
    children: list[_Node] = field(default_factory=list)
    # Child nodes keyed by the answer index they sit under; `None` holds item.item children.
    by_answer: dict[int | None, list[_Node]] = field(default_factory=dict)


class _Validator:
    def __init__(self, questionnaire: JSON, *, value_sets: ValueSetLookup | None, finished: bool) -> None:
        self.questionnaire = questionnaire
        self.value_sets = value_sets
        self.finished = finished
        self.issues: list[Issue] = []
        self.roots: list[_Node] = []
        self.placement: dict[str, tuple[JSON, JSON | None]] = {}
        self._index(questionnaire.get("item") or [], None)
        self._enabled: dict[int, bool] = {}
        self._evaluating: set[int] = set()
        self._scopes: dict[int, dict[str, list[_Node]]] = {}
        self._unresolved: set[str] = set()

    # --- reporting -------------------------------------------------------------------------------------

    def add(self, message: str, expression: str, code: str, severity: Severity = "error") -> None:
        self.issues.append(Issue(message, expression, code=code, severity=severity))

    def add_completion(self, message: str, expression: str, code: str) -> None:
        """Report a rule that binds only a finished response."""
        self.add(message, expression, code, "error" if self.finished else "warning")

    def _index(self, items: list[JSON], parent: JSON | None) -> None:
        for item in items:
            link_id = item.get("linkId")
            if isinstance(link_id, str) and link_id not in self.placement:
                self.placement[link_id] = (item, parent)
            self._index(item.get("item") or [], item)

    # --- the resource level ----------------------------------------------------------------------------

    def check_header(self, response: JSON) -> None:
        status = response.get("status")
        if status not in STATUSES:
            self.add(
                f"Status '{status}' is not a QuestionnaireResponse status (allowed: {', '.join(STATUSES)})",
                f"{ROOT}.status",
                "code-invalid",
            )
        canonical = response.get("questionnaire")
        url = self.questionnaire.get("url")
        version = self.questionnaire.get("version")
        if not isinstance(canonical, str) or not canonical:
            self.add(
                "The response must name the Questionnaire it answers", f"{ROOT}.questionnaire", "required"
            )
            return
        base, _, cited_version = canonical.partition("|")
        wanted = f"{url}|{version}" if version else str(url)
        # A relative reference (`Questionnaire/gcs`) was resolved by the caller; only absolute ones compare.
        absolute = "://" in base or base.startswith("urn:")
        if (url and absolute and base != url) or (cited_version and version and cited_version != version):
            self.add(
                f"The response cites Questionnaire '{canonical}' but was checked against '{wanted}'",
                f"{ROOT}.questionnaire",
                "invalid",
            )

    def check_items(self, items: list[JSON]) -> None:
        self.roots = self._build(items, self.questionnaire.get("item") or [], ROOT, None)
        self._check_level(self.roots, self.questionnaire.get("item") or [], ROOT, None)

    # --- phase 1: match the response tree to the Questionnaire tree -----------------------------------

    def _build(
        self, items: list[JSON], definitions: list[JSON], base: str, parent: _Node | None
    ) -> list[_Node]:
        positions = {d.get("linkId"): (i, d) for i, d in enumerate(definitions)}
        nodes: list[_Node] = []
        last = -1
        last_node: _Node | None = None
        for k, item in enumerate(items):
            node = _Node(item=item, path=f"{base}.item[{k}]", parent=parent)
            nodes.append(node)
            link_id = item.get("linkId")
            found = positions.get(link_id)
            if found is None:
                node.problem = self._misplaced(link_id, node.path, parent)
                continue
            index, definition = found
            node.definition = definition
            if index < last and last_node is not None and last_node.definition is not None:
                node.problem = Issue(
                    f"{item_label(definition)} is out of order: the Questionnaire puts it before "
                    f"{item_label(last_node.definition)}",
                    node.path,
                    code="structure",
                )
            elif index == last and not (definition.get("type") == "group" and definition.get("repeats")):
                if definition.get("type") == "group":
                    message = (
                        f"{item_label(definition)} is a group that does not repeat; it may appear only once"
                    )
                else:
                    message = (
                        f"{item_label(definition)} appears more than once; "
                        "all answers to a question belong in one item"
                    )
                node.problem = Issue(message, node.path, code="structure")
            if index >= last:
                last, last_node = index, node
            self._build_children(node, definition)
        return nodes

    def _build_children(self, node: _Node, definition: JSON) -> None:
        kind = definition.get("type")
        child_definitions = definition.get("item") or []
        if kind != "display" and (kind == "group" or kind not in _ANSWER_KEYS):
            built = self._build(node.item.get("item") or [], child_definitions, node.path, node)
            node.by_answer[None] = built
            node.children.extend(built)
        if kind not in _NO_ANSWER_TYPES:
            for j, answer in enumerate(node.item.get("answer") or []):
                nested = answer.get("item") or []
                built = self._build(nested, child_definitions, f"{node.path}.answer[{j}]", node)
                node.by_answer[j] = built
                node.children.extend(built)

    def _misplaced(self, link_id: Any, path: str, parent: _Node | None) -> Issue:
        placed = self.placement.get(link_id) if isinstance(link_id, str) else None
        if placed is None:
            return Issue(f"linkId '{link_id}' does not exist in the Questionnaire", path, code="not-found")
        definition, owner = placed
        where = f"under {item_label(owner)}" if owner is not None else "at the top level"
        here = (
            f"under {item_label(parent.definition)}"
            if parent is not None and parent.definition is not None
            else "at the top level"
        )
        return Issue(
            f"{item_label(definition)} is in the wrong place: it sits {here}, "
            f"but the Questionnaire puts it {where}",
            path,
            code="structure",
        )

    # --- phase 2: check every node ---------------------------------------------------------------------

    def _check_level(
        self, nodes: list[_Node], definitions: list[JSON], container_path: str, container: _Node | None
    ) -> None:
        for node in nodes:
            if node.problem is not None:
                self.issues.append(node.problem)
            if node.definition is not None:
                self._check_node(node, node.definition)
        by_link: dict[str, list[_Node]] = {}
        for node in nodes:
            if node.definition is not None:
                by_link.setdefault(node.definition["linkId"], []).append(node)
        for definition in definitions:
            self._check_presence(
                definition, by_link.get(definition.get("linkId", ""), []), container_path, container
            )

    def _check_presence(
        self, definition: JSON, occurrences: list[_Node], container_path: str, container: _Node | None
    ) -> None:
        kind = definition.get("type")
        if kind == "display" or not self.enabled(definition, container):
            return
        label = item_label(definition)
        answered = [n for n in occurrences if self._has_content(n)]
        if definition.get("required") and not answered:
            where = occurrences[0].path if occurrences else container_path
            self.add_completion(f"{label} is required", where, "required")
            return
        if not occurrences:
            return
        min_occurs = _extension_int(definition, EXT_MIN_OCCURS)
        max_occurs = _extension_int(definition, EXT_MAX_OCCURS)
        if kind == "group":
            if min_occurs is not None and len(occurrences) < min_occurs:
                self.add_completion(
                    f"{label} needs at least {min_occurs} entries (has {len(occurrences)})",
                    occurrences[0].path,
                    "required",
                )
            if max_occurs is not None and len(occurrences) > max_occurs:
                self.add_completion(
                    f"{label} allows at most {max_occurs} entries (has {len(occurrences)})",
                    occurrences[max_occurs].path,
                    "structure",
                )
            return
        count = sum(len(n.item.get("answer") or []) for n in occurrences)
        if min_occurs is not None and 0 < count < min_occurs:
            self.add_completion(
                f"{label} needs at least {min_occurs} answers (has {count})", occurrences[0].path, "required"
            )
        if max_occurs is not None and count > max_occurs and len(occurrences) == 1:
            self.add_completion(
                f"{label} allows at most {max_occurs} answers (has {count})",
                f"{occurrences[0].path}.answer[{max_occurs}]",
                "structure",
            )

    def _has_content(self, node: _Node) -> bool:
        if node.item.get("answer"):
            return True
        return any(self._has_content(child) for child in node.by_answer.get(None, []))

    def _check_node(self, node: _Node, definition: JSON) -> None:
        kind = definition.get("type")
        label = item_label(definition)
        answers: list[JSON] = node.item.get("answer") or []
        nested: list[JSON] = node.item.get("item") or []
        disabled = not self.node_enabled(node) and self._carries_answers(node)
        # Only the outermost disabled item is reported; everything inside it is disabled with it.
        if disabled and (node.parent is None or self.node_enabled(node.parent)):
            triggers = ", ".join(sorted({str(c.get("question")) for c in definition.get("enableWhen") or []}))
            self.add_completion(
                f"{label} must be left unanswered: the answers given do not enable it "
                f"(it depends on linkId {triggers})",
                node.path,
                "business-rule",
            )
        if answers and nested:
            self.add(
                f"{label} has both answers and nested items; nested items of a question belong under its "
                "answer, those of a group directly under the group (qrs-1)",
                node.path,
                "invariant",
            )
        elif kind in _NO_ANSWER_TYPES:
            for j in range(len(answers)):
                self.add(
                    f"{label} is a {kind} item and takes no answer", f"{node.path}.answer[{j}]", "structure"
                )
        elif nested and kind in _ANSWER_KEYS:
            self.add(
                f"{label} is a question: the items nested in it belong under its answer (answer.item)",
                f"{node.path}.item[0]",
                "structure",
            )
        if kind == "display" and nested:
            if not answers:
                self.add(
                    f"{label} is a display item and cannot contain items", f"{node.path}.item[0]", "structure"
                )
            return
        if kind not in _NO_ANSWER_TYPES:
            if not definition.get("repeats") and len(answers) > 1:
                self.add(f"{label} takes only one answer", f"{node.path}.answer[1]", "structure")
            for j, answer in enumerate(answers):
                self.check_answer(definition, answer, f"{node.path}.answer[{j}]")
        child_definitions = definition.get("item") or []
        for key, children in node.by_answer.items():
            container_path = node.path if key is None else f"{node.path}.answer[{key}]"
            self._check_level(children, child_definitions, container_path, node)

    def _carries_answers(self, node: _Node) -> bool:
        return bool(node.item.get("answer")) or any(self._carries_answers(c) for c in node.children)

    # --- one answer ------------------------------------------------------------------------------------

    def check_answer(self, definition: JSON, answer: JSON, path: str) -> None:
        kind = str(definition.get("type"))
        label = item_label(definition)
        keys = [k for k in answer if k.startswith("value")]
        if not keys:
            self.add(f"{label}: the answer has no value", path, "required")
            return
        if len(keys) > 1:
            self.add(
                f"{label}: an answer holds exactly one value, not {', '.join(sorted(keys))}",
                path,
                "structure",
            )
            return
        key = keys[0]
        value = answer[key]
        options: list[JSON] = definition.get("answerOption") or []
        allowed = _ANSWER_KEYS.get(kind)
        if allowed is not None:
            option_keys = {k for o in options for k in o if k.startswith("value")}
            if kind in ("choice", "open-choice"):
                allowed = allowed | option_keys
            if key not in allowed:
                self.add(f"{label} expects {_EXPECTED[kind]}, not {key}", path, "value")
                return
        problem = _format_problem(key, value)
        if problem is not None:
            self.add(f"{label}: {problem}", path, "value")
            return
        if options:
            if not (kind == "open-choice" and key == "valueString") and not any(
                _option_matches(option, key, value) for option in options
            ):
                self.add(
                    f"{label}: {_describe(key, value)} is not one of the allowed answers",
                    path,
                    "code-invalid",
                )
                return
        elif (
            isinstance(definition.get("answerValueSet"), str)
            and key == "valueCoding"
            and not self._in_value_set(definition, definition["answerValueSet"], value, path)
        ):
            return
        self._check_bounds(definition, key, value, path)

    def _in_value_set(self, definition: JSON, canonical: str, coding: JSON, path: str) -> bool:
        if canonical.startswith("#"):
            codes = _contained_codes(self.questionnaire, canonical[1:])
        else:
            codes = self.value_sets(canonical) if self.value_sets is not None else None
        if codes is None:
            if canonical not in self._unresolved:
                self._unresolved.add(canonical)
                self.add(
                    f"ValueSet {canonical} could not be resolved, so answers to {item_label(definition)} "
                    "were not checked against it",
                    path,
                    "not-found",
                    "warning",
                )
            return True
        if (coding.get("system"), coding.get("code")) in codes:
            return True
        self.add(
            f"{item_label(definition)}: {_describe('valueCoding', coding)} is not in ValueSet {canonical}",
            path,
            "code-invalid",
        )
        return False

    def _check_bounds(self, definition: JSON, key: str, value: Any, path: str) -> None:
        label = item_label(definition)
        if key in _LENGTH_KEYS and isinstance(value, str):
            max_length = definition.get("maxLength")
            if isinstance(max_length, int) and len(value) > max_length:
                self.add_completion(
                    f"{label} allows at most {max_length} characters (has {len(value)})", path, "too-long"
                )
            min_length = _extension_int(definition, EXT_MIN_LENGTH)
            if min_length is not None and len(value) < min_length:
                self.add_completion(
                    f"{label} needs at least {min_length} characters (has {len(value)})", path, "value"
                )
        for url, sign, word in ((EXT_MIN_VALUE, -1, "at least"), (EXT_MAX_VALUE, 1, "at most")):
            bound = _extension_value(definition, url)
            if bound is None:
                continue
            order = _compare(_comparable(key, value), _comparable(*bound))
            if order == sign:
                self.add_completion(f"{label} must be {word} {_show(*bound)}", path, "value")

    # --- enableWhen ------------------------------------------------------------------------------------

    def node_enabled(self, node: _Node) -> bool:
        key = id(node)
        known = self._enabled.get(key)
        if known is not None:
            return known
        if key in self._evaluating:
            # A cycle of enableWhen conditions; take the item as enabled rather than recurse forever.
            return True
        self._evaluating.add(key)
        try:
            result = node.definition is None or self.enabled(node.definition, node.parent)
        finally:
            self._evaluating.discard(key)
        self._enabled[key] = result
        return result

    def enabled(self, definition: JSON, container: _Node | None) -> bool:
        """Whether an item is enabled where it sits; a disabled container disables all it holds."""
        if container is not None and not self.node_enabled(container):
            return False
        conditions: list[JSON] = definition.get("enableWhen") or []
        if not conditions:
            return True
        results = (self._condition(condition, container) for condition in conditions)
        return any(results) if definition.get("enableBehavior") == "any" else all(results)

    def _condition(self, condition: JSON, container: _Node | None) -> bool:
        values = [
            (key, answer[key])
            for node in self._nearest(str(condition.get("question")), container)
            if self.node_enabled(node)
            for answer in node.item.get("answer") or []
            for key in answer
            if key.startswith("value")
        ]
        operator = condition.get("operator")
        expected = next(((k, v) for k, v in condition.items() if k.startswith("answer")), None)
        if expected is None:
            return False
        if operator == "exists":
            return bool(values) == (expected[1] is True)
        target = _comparable(*expected)
        if operator == "=":
            return any(_equal(_comparable(*v), target) for v in values)
        if operator == "!=":
            # R4 wording is garbled; the intended reading (made explicit in R5) is "no answer equals".
            return not any(_equal(_comparable(*v), target) for v in values)
        wanted = {">": (1,), "<": (-1,), ">=": (0, 1), "<=": (-1, 0)}.get(str(operator))
        if wanted is None:
            return False
        return any(_compare(_comparable(*v), target) in wanted for v in values)

    def _nearest(self, link_id: str, container: _Node | None) -> list[_Node]:
        """The occurrences of a question nearest to a position: first within the closest ancestor."""
        scope = container
        while True:
            found = self._scope(scope).get(link_id)
            if found or scope is None:
                return found or []
            scope = scope.parent

    def _scope(self, scope: _Node | None) -> dict[str, list[_Node]]:
        key = id(scope)
        cached = self._scopes.get(key)
        if cached is None:
            cached = {}
            for node in _walk(scope.children if scope is not None else self.roots):
                if node.definition is not None:
                    cached.setdefault(node.definition["linkId"], []).append(node)
            self._scopes[key] = cached
        return cached


def _contained_codes(questionnaire: JSON, local_id: str) -> Codes | None:
    """Codes of a ValueSet contained in the Questionnaire, when they are listed rather than filtered."""
    for resource in questionnaire.get("contained") or []:
        if resource.get("resourceType") != "ValueSet" or resource.get("id") != local_id:
            continue
        expansion = resource.get("expansion")
        if isinstance(expansion, dict):
            return frozenset(_expansion_codes(expansion.get("contains") or []))
        includes = (resource.get("compose") or {}).get("include") or []
        if any("concept" not in include for include in includes) or (resource.get("compose") or {}).get(
            "exclude"
        ):
            return None
        return frozenset(
            (include.get("system"), concept.get("code"))
            for include in includes
            for concept in include["concept"]
        )
    return None


def _expansion_codes(contains: list[JSON]) -> Iterator[tuple[str | None, str]]:
    for entry in contains:
        if entry.get("code"):
            yield entry.get("system"), entry["code"]
        yield from _expansion_codes(entry.get("contains") or [])


def _walk(nodes: Iterable[_Node]) -> Iterator[_Node]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


# --- values ----------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _calendar_ok(text: str) -> bool:
    parts = text[:10].split("-")
    if len(parts) < 3:
        return True
    try:
        date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return False
    return True


_FORMATS: Final[dict[str, tuple[Callable[[Any], bool], str]]] = {
    "valueBoolean": (lambda v: isinstance(v, bool), "must be true or false"),
    "valueDecimal": (_is_number, "must be a number"),
    "valueInteger": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and -_INT32 <= v < _INT32,
        "must be a whole number",
    ),
    "valueDate": (
        lambda v: isinstance(v, str) and _DATE_RE.fullmatch(v) is not None and _calendar_ok(v),
        "must be a date such as 2024-05-31",
    ),
    "valueDateTime": (
        lambda v: isinstance(v, str) and _DATETIME_RE.fullmatch(v) is not None and _calendar_ok(v),
        "must be a date and time such as 2024-05-31T14:30:00+02:00",
    ),
    "valueTime": (
        lambda v: isinstance(v, str) and _TIME_RE.fullmatch(v) is not None,
        "must be a time such as 14:30:00",
    ),
    "valueString": (lambda v: isinstance(v, str) and v != "", "must be non-empty text"),
    "valueUri": (
        lambda v: isinstance(v, str) and v != "" and not any(c.isspace() for c in v),
        "must be a web address",
    ),
    "valueCoding": (lambda v: isinstance(v, dict) and bool(v.get("code")), "must be a coding with a code"),
    "valueQuantity": (
        lambda v: isinstance(v, dict) and ("value" not in v or _is_number(v["value"])),
        "must be a quantity with a numeric value",
    ),
    "valueAttachment": (lambda v: isinstance(v, dict), "must be an attachment"),
    "valueReference": (lambda v: isinstance(v, dict), "must be a reference"),
}


def _format_problem(key: str, value: Any) -> str | None:
    check = _FORMATS.get(key)
    if check is None:
        return f"{key} is not an answer type"
    valid, message = check
    return None if valid(value) else message


def _option_matches(option: JSON, key: str, value: Any) -> bool:
    if key not in option:
        return False
    expected = option[key]
    if key == "valueCoding":
        return (expected.get("system"), expected.get("code")) == (value.get("system"), value.get("code"))
    if key == "valueReference":
        return bool(expected.get("reference")) and expected.get("reference") == value.get("reference")
    return bool(expected == value)


def _describe(key: str, value: Any) -> str:
    if key == "valueCoding" and isinstance(value, dict):
        system = value.get("system")
        return f"code '{value.get('code')}'" + (f" (system {system})" if system else "")
    if key == "valueReference" and isinstance(value, dict):
        return f"reference '{value.get('reference')}'"
    return repr(value)


def _show(key: str, value: Any) -> str:
    if key.endswith("Quantity") and isinstance(value, dict):
        return f"{value.get('value')} {value.get('unit') or value.get('code') or ''}".strip()
    return str(value)


def _extension(element: JSON, url: str) -> JSON | None:
    for extension in element.get("extension") or []:
        if extension.get("url") == url:
            found: JSON = extension
            return found
    return None


def _extension_int(element: JSON, url: str) -> int | None:
    extension = _extension(element, url)
    value = extension.get("valueInteger") if extension else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _extension_value(element: JSON, url: str) -> tuple[str, Any] | None:
    extension = _extension(element, url)
    if extension is None:
        return None
    return next(((k, v) for k, v in extension.items() if k.startswith("value")), None)


# A value reduced to (domain, payload) so that answers, enableWhen answers and extension bounds of
# different but compatible types (integer and decimal, date and dateTime) compare with each other.
_Comparable = tuple[str, Any]


def _comparable(key: str, value: Any) -> _Comparable | None:
    kind = key.removeprefix("value").removeprefix("answer")
    try:
        if kind in ("Integer", "Decimal") and _is_number(value):
            return ("number", Decimal(str(value)))
        if kind in ("Date", "DateTime") and isinstance(value, str):
            return ("instant", _instant(value))
        if kind == "Time" and isinstance(value, str):
            hours, minutes, seconds = value.split(":")
            return ("time", (int(hours), int(minutes), Decimal(seconds)))
    except (ValueError, InvalidOperation):
        return None
    if kind in ("String", "Uri") and isinstance(value, str):
        return ("string", value)
    if kind == "Boolean" and isinstance(value, bool):
        return ("boolean", value)
    if kind == "Coding" and isinstance(value, dict):
        return ("coding", (value.get("system"), value.get("code")))
    if kind == "Reference" and isinstance(value, dict):
        return ("reference", value.get("reference"))
    if kind == "Quantity" and isinstance(value, dict) and _is_number(value.get("value")):
        unit = (value.get("system"), value.get("code")) if value.get("code") else (None, value.get("unit"))
        return ("quantity", (unit, Decimal(str(value["value"]))))
    return None


def _instant(text: str) -> tuple[tuple[int, ...], datetime | None]:
    """Written date parts (for partial precision) and, when a time is present, the UTC instant."""
    day, _, clock = text.partition("T")
    parts = tuple(int(p) for p in day.split("-"))
    if not clock:
        return parts, None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(":60", ":59"))
    return parts, moment.astimezone(UTC)


def _equal(a: _Comparable | None, b: _Comparable | None) -> bool:
    if a is None or b is None or a[0] != b[0]:
        return False
    if a[0] == "coding":
        (system_a, code_a), (system_b, code_b) = a[1], b[1]
        # An enableWhen coding without a system matches on code alone.
        return bool(code_a == code_b and (system_a == system_b or system_a is None or system_b is None))
    return _compare(a, b) == 0


def _compare(a: _Comparable | None, b: _Comparable | None) -> int | None:
    """-1, 0 or 1; `None` when the two cannot be ordered (other types, units or precision)."""
    if a is None or b is None or a[0] != b[0]:
        return None
    domain, left, right = a[0], a[1], b[1]
    if domain in ("boolean", "coding", "reference"):
        return 0 if left == right else None
    if domain == "quantity":
        if left[0] != right[0]:
            return None
        left, right = left[1], right[1]
    elif domain == "instant":
        (parts_a, moment_a), (parts_b, moment_b) = left, right
        if moment_a is not None and moment_b is not None:
            left, right = moment_a, moment_b
        else:
            common = min(len(parts_a), len(parts_b))
            left, right = parts_a[:common], parts_b[:common]
            if left == right and (len(parts_a) != len(parts_b) or (moment_a is None) != (moment_b is None)):
                return None
    order: int = (left > right) - (left < right)
    return order
