"""PATCH bodies applied to a resource's JSON, without a database.

https://hl7.org/fhir/R4/http.html#patch allows two formats here:

- JSON Patch (RFC 6902, `application/json-patch+json`), applied with the `jsonpatch` library one operation
  at a time, so that a failure names the operation (`JsonPatch[2]`).
- FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html): a `Parameters` resource whose `operation`
  parameters have the parts `type`, `path`, `name`, `value`, `index`, `source` and `destination`. All five
  types (add, insert, delete, replace, move) are applied.

FHIRPath support is deliberately a subset, because the patch must know *where* in the JSON a path lands,
which a FHIRPath engine (it returns values) does not say. A path is a chain of steps after an optional
leading resource type:

- an element name (`name`, `valueString`, or `value` for whichever `value[x]` is present), optionally
  indexed (`name[0]`);
- `first()`, `last()`;
- `where(<criteria>)`, the criteria evaluated by `fhirpathpy` on each candidate (any FHIRPath expression);
- `extension('<url>')`.

Anything else (`ofType()`, `resolve()`, `descendants()`, unions `|`, operators outside `where`, `$this`
paths) is refused with 400 and code `not-supported`. For `insert` and `move` the last step must be a plain
element name (the list itself). Deleting or moving an item of a repeating primitive does not realign its
`_element` extension array.

Both functions return a new dict and leave their input untouched; the caller validates the result exactly
as the body of a PUT (`service.fhir.parsing.check_resource`).
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass
from typing import Any

import fhirpathpy
import jsonpatch
import jsonpointer
from fhirpathpy.models import models

from mappings.r4 import model_class
from service.errors import BadRequest, Issue, Unprocessable

_FHIRPATH_MODEL = models["r4"]
_OPERATIONS = ("add", "insert", "delete", "replace", "move")


# --- JSON Patch ------------------------------------------------------------------------------------


def apply_json_patch(resource: dict[str, Any], document: Any) -> dict[str, Any]:
    """Apply an RFC 6902 patch document (a JSON array of operations) to a copy of `resource`.

    A malformed document is a 400; an operation that cannot be applied (a missing path, a failed `test`) is
    a 422 naming the operation; nothing partial is ever returned.
    """
    if not isinstance(document, list):
        raise BadRequest(Issue("a JSON Patch body is a JSON array of operations", expression="JsonPatch"))
    result = copy.deepcopy(resource)
    for index, operation in enumerate(document):
        where = f"JsonPatch[{index}]"
        if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
            raise BadRequest(Issue(f"{where} must be an object with an 'op'", expression=where))
        try:
            patch = jsonpatch.JsonPatch([operation])
            result = patch.apply(result, in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise Unprocessable(
                Issue(f"{where}: test failed: {exc}", expression=where, code="conflict")
            ) from exc
        except jsonpatch.InvalidJsonPatch as exc:
            raise BadRequest(Issue(f"{where}: {exc}", expression=where)) from exc
        except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
            raise Unprocessable(Issue(f"{where}: {exc}", expression=where)) from exc
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            # jsonpatch lets a few of these through for operations on values of the wrong kind.
            raise Unprocessable(Issue(f"{where} cannot be applied: {exc}", expression=where)) from exc
    if not isinstance(result, dict):
        raise Unprocessable(
            Issue("the patch replaced the resource with a non-object", expression="JsonPatch")
        )
    _check_identity(resource, result, "JsonPatch")
    return result


# --- FHIRPath Patch --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """Where a path landed: `container[name]` (or its item `index`), with the model class of its value."""

    container: dict[str, Any] | None
    name: str | None
    index: int | None
    value: Any
    model: Any


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # "name", "first", "last", "where", "extension"
    argument: str = ""
    index: int | None = None


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Apply a FHIRPath Patch (`Parameters`) to a copy of `resource`."""
    if parameters.get("resourceType") != "Parameters":
        raise BadRequest(
            Issue("a FHIRPath Patch body is a Parameters resource", expression="Parameters.resourceType")
        )
    entries = parameters.get("parameter")
    if not isinstance(entries, list) or not entries:
        raise BadRequest(Issue("the Parameters hold no operation", expression="Parameters.parameter"))
    result = copy.deepcopy(resource)
    resource_type = str(resource.get("resourceType"))
    for index, parameter in enumerate(entries):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(parameter, dict) or parameter.get("name") != "operation":
            raise BadRequest(Issue(f"{where} must be a parameter named 'operation'", expression=where))
        _apply_operation(result, resource_type, _parts(parameter, where), where)
    _check_identity(resource, result, "Parameters")
    return result


def _parts(parameter: dict[str, Any], where: str) -> dict[str, Any]:
    parts = parameter.get("part")
    if not isinstance(parts, list):
        raise BadRequest(Issue(f"{where} has no parts", expression=f"{where}.part"))
    found: dict[str, Any] = {}
    for position, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise BadRequest(
                Issue(f"{where}.part[{position}] has no name", expression=f"{where}.part[{position}]")
            )
        found[part["name"]] = part
    return found


def _apply_operation(resource: dict[str, Any], resource_type: str, parts: dict[str, Any], where: str) -> None:
    kind = _primitive(parts, "type", "valueCode", where)
    if kind not in _OPERATIONS:
        raise BadRequest(
            Issue(f"{where}: type must be one of {', '.join(_OPERATIONS)}, not {kind!r}", expression=where)
        )
    path = _primitive(parts, "path", "valueString", where)
    if kind == "add":
        name = _primitive(parts, "name", "valueString", where)
        _add(resource, resource_type, path, name, _value(parts, where), where)
    elif kind == "insert":
        index = _integer(parts, "index", where)
        container, name, items = _list_at(resource, resource_type, path, where)
        if not 0 <= index <= len(items):
            raise Unprocessable(
                Issue(f"{where}: index {index} is outside 0..{len(items)} of {path}", expression=where)
            )
        items.insert(index, _value(parts, where))
        container[name] = items
    elif kind == "delete":
        nodes = _resolve(resource, resource_type, path, where)
        if len(nodes) > 1:
            raise Unprocessable(
                Issue(f"{where}: {path} matches {len(nodes)} elements; delete takes one", expression=where)
            )
        if nodes:
            _remove(nodes[0], where)
    elif kind == "replace":
        node = _single(resource, resource_type, path, where)
        if node.container is None or node.name is None:
            raise Unprocessable(Issue(f"{where}: the resource itself cannot be replaced", expression=where))
        value = _value(parts, where)
        if node.index is None:
            node.container[node.name] = value
        else:
            node.container[node.name][node.index] = value
    else:
        source = _integer(parts, "source", where)
        destination = _integer(parts, "destination", where)
        container, name, items = _list_at(resource, resource_type, path, where)
        if not (0 <= source < len(items) and 0 <= destination < len(items)):
            raise Unprocessable(
                Issue(
                    f"{where}: source and destination must lie in 0..{len(items) - 1} of {path}",
                    expression=where,
                )
            )
        items.insert(destination, items.pop(source))
        container[name] = items


def _add(resource: dict[str, Any], resource_type: str, path: str, name: str, value: Any, where: str) -> None:
    node = _single(resource, resource_type, path, where)
    if not isinstance(node.value, dict):
        raise Unprocessable(
            Issue(f"{where}: {path} is not an element that can hold {name}", expression=where)
        )
    existing = node.value.get(name)
    if isinstance(existing, list):
        existing.append(value)
    elif existing is not None:
        raise Unprocessable(
            Issue(f"{where}: {path}.{name} already has a value; use replace", expression=where)
        )
    else:
        repeats, _ = _field(node.model, name)
        node.value[name] = [value] if repeats and not isinstance(value, list) else value


def _remove(node: _Node, where: str) -> None:
    if node.container is None or node.name is None:
        raise Unprocessable(Issue(f"{where}: the resource itself cannot be deleted", expression=where))
    if node.index is None:
        del node.container[node.name]
        node.container.pop(f"_{node.name}", None)
        return
    items = node.container[node.name]
    del items[node.index]
    if not items:
        del node.container[node.name]


def _list_at(
    resource: dict[str, Any], resource_type: str, path: str, where: str
) -> tuple[dict[str, Any], str, list[Any]]:
    """The parent element and the list named by the last step of `path` (created empty if absent)."""
    steps = _steps(path, resource_type, where)
    if not steps or steps[-1].kind != "name" or steps[-1].index is not None:
        raise BadRequest(
            Issue(
                f"{where}: the path of insert and move must end in the name of a list, not {path!r}",
                expression=where,
                code="not-supported",
            )
        )
    parents = _walk(resource, resource_type, steps[:-1], where)
    if len(parents) != 1 or not isinstance(parents[0].value, dict):
        raise Unprocessable(Issue(f"{where}: {path} does not lead to one element", expression=where))
    container, name = parents[0].value, steps[-1].argument
    items = container.get(name, [])
    if not isinstance(items, list):
        raise Unprocessable(Issue(f"{where}: {path} is not a list", expression=where))
    return container, name, items


def _single(resource: dict[str, Any], resource_type: str, path: str, where: str) -> _Node:
    nodes = _resolve(resource, resource_type, path, where)
    if len(nodes) != 1:
        raise Unprocessable(
            Issue(f"{where}: {path} matches {len(nodes)} elements; exactly one is needed", expression=where)
        )
    return nodes[0]


def _resolve(resource: dict[str, Any], resource_type: str, path: str, where: str) -> list[_Node]:
    return _walk(resource, resource_type, _steps(path, resource_type, where), where)


def _walk(resource: dict[str, Any], resource_type: str, steps: list[_Step], where: str) -> list[_Node]:
    nodes = [_Node(None, None, None, resource, _model(resource_type))]
    for step in steps:
        if step.kind == "first":
            nodes = nodes[:1]
        elif step.kind == "last":
            nodes = nodes[-1:]
        elif step.kind == "where":
            nodes = [node for node in nodes if _holds(node.value, step.argument, where)]
        else:
            name = "extension" if step.kind == "extension" else step.argument
            children = [child for node in nodes for child in _children(node, name)]
            if step.kind == "extension":
                children = [
                    c for c in children if isinstance(c.value, dict) and c.value.get("url") == step.argument
                ]
            nodes = children
            if step.index is not None:
                nodes = nodes[step.index : step.index + 1]
    return nodes


def _children(node: _Node, name: str) -> list[_Node]:
    if not isinstance(node.value, dict):
        return []
    if name not in node.value:
        # A choice element (`value[x]`) is named without its type in FHIRPath: `extension.value`.
        typed = [
            key for key in node.value if key.startswith(name) and key[len(name) : len(name) + 1].isupper()
        ]
        if len(typed) != 1:
            return []
        name = typed[0]
    value = node.value[name]
    _, model = _field(node.model, name)
    if isinstance(value, list):
        return [_Node(node.value, name, i, item, model) for i, item in enumerate(value)]
    return [_Node(node.value, name, None, value, model)]


def _holds(value: Any, criteria: str, where: str) -> bool:
    try:
        outcome = fhirpathpy.evaluate(value, criteria, {}, _FHIRPATH_MODEL)
    except Exception as exc:  # fhirpathpy raises plain exceptions of several kinds for a bad expression.
        raise BadRequest(
            Issue(f"{where}: cannot evaluate where({criteria}): {exc}", expression=where)
        ) from exc
    return outcome == [True]


def _steps(path: str, resource_type: str, where: str) -> list[_Step]:
    pieces = _split_path(path, where)
    if pieces and pieces[0] == resource_type:
        pieces = pieces[1:]
    steps = []
    for piece in pieces:
        steps.append(_step(piece, path, where))
    return steps


def _split_path(path: str, where: str) -> list[str]:
    """Split on the dots that are outside parentheses and quotes."""
    pieces: list[str] = []
    current: list[str] = []
    depth, quote = 0, False
    for char in path.strip():
        if char == "'" and depth:
            quote = not quote
        elif not quote and char == "(":
            depth += 1
        elif not quote and char == ")":
            depth -= 1
        if char == "." and depth == 0 and not quote:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    if depth or quote or any(not piece for piece in pieces):
        raise BadRequest(Issue(f"{where}: the path {path!r} is not well formed", expression=where))
    return pieces


def _step(piece: str, path: str, where: str) -> _Step:
    if piece in ("first()", "last()"):
        return _Step(piece[:-2])
    if piece.startswith("where(") and piece.endswith(")"):
        return _Step("where", piece[6:-1])
    if piece.startswith("extension(") and piece.endswith(")"):
        argument = piece[10:-1].strip()
        if len(argument) >= 2 and argument[0] == argument[-1] == "'":
            return _Step("extension", argument[1:-1])
    name, index = piece, None
    if piece.endswith("]") and "[" in piece:
        name, _, raw = piece[:-1].partition("[")
        if not raw.isdigit():
            name = ""
        else:
            index = int(raw)
    if name.isidentifier() and name[0].isalpha():
        return _Step("name", name, index)
    raise BadRequest(
        Issue(
            f"{where}: {piece!r} in {path!r} is not supported; paths may use element names, [n], first(), "
            "last(), where(...) and extension('url')",
            expression=where,
            code="not-supported",
        )
    )


def _model(resource_type: str) -> Any:
    try:
        return model_class(resource_type)
    except KeyError:
        return None


def _field(model: Any, name: str) -> tuple[bool, Any]:
    """Whether element `name` of `model` repeats, and the model class of its values (None if unknown)."""
    fields = getattr(model, "model_fields", None)
    if not fields:
        return False, None
    info = fields.get(name) or next((f for f in fields.values() if f.alias == name), None)
    if info is None:
        return False, None
    annotation = info.annotation
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin is list or origin is typing.List:  # noqa: UP006 - the models use typing.List
            repeats = True
            annotation = arguments[0]
        elif origin is typing.Union and len(arguments) == 1:
            annotation = arguments[0]
        else:
            break
    getter = getattr(annotation, "get_model_klass", None)
    return repeats, getter() if callable(getter) else None


def _primitive(parts: dict[str, Any], name: str, key: str, where: str) -> str:
    value = parts.get(name, {}).get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(Issue(f"{where}: the part '{name}' needs a {key}", expression=f"{where}.part"))
    return value


def _integer(parts: dict[str, Any], name: str, where: str) -> int:
    value = parts.get(name, {}).get("valueInteger")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(
            Issue(f"{where}: the part '{name}' needs a valueInteger", expression=f"{where}.part")
        )
    return value


def _value(parts: dict[str, Any], where: str) -> Any:
    """The part `value`: its `value[x]`, or for a complex value without a datatype, its own parts."""
    part = parts.get("value")
    if part is None:
        raise BadRequest(Issue(f"{where}: the part 'value' is missing", expression=f"{where}.part"))
    return _part_value(part, where)


def _part_value(part: dict[str, Any], where: str) -> Any:
    typed = [key for key in part if key.startswith("value") and key != "value"]
    if len(typed) == 1:
        return copy.deepcopy(part[typed[0]])
    nested = part.get("part")
    if not typed and isinstance(nested, list):
        element: dict[str, Any] = {}
        for child in nested:
            if not isinstance(child, dict) or not isinstance(child.get("name"), str):
                raise BadRequest(
                    Issue(f"{where}: a nested value part has no name", expression=f"{where}.part")
                )
            value = _part_value(child, where)
            name = child["name"]
            if name in element:
                previous = element[name]
                element[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                element[name] = value
        return element
    raise BadRequest(
        Issue(
            f"{where}: the value part needs exactly one value[x] or nested parts", expression=f"{where}.part"
        )
    )


def _check_identity(before: dict[str, Any], after: dict[str, Any], where: str) -> None:
    for key in ("resourceType", "id"):
        if after.get(key) != before.get(key):
            raise Unprocessable(
                Issue(f"a patch may not change the resource's {key}", expression=f"{where}", code="invariant")
            )
