"""Checking a run's parameters against a deployment's stored JSON schema.

Whoever creates a run of a deployment (the embedded store, the server) has no
flow code, only the schema derived from the flow's signature when it was
deployed (:func:`sluice.deployments.parameters.parameter_schema_of`). This
module checks values against the part of JSON Schema that pydantic emits for
signatures: ``type``, ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf``,
local ``$ref`` into ``$defs``, ``properties``/``required``/
``additionalProperties``, ``items``/``prefixItems`` and the numeric, length
and item-count bounds. Keywords it does not know (``format``, ``title``)
accept any value: the flow's own validation still runs when the run starts.

Values are checked as JSON types, strictly: ``"3"`` is not an integer.
Pure functions, no imports beyond the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sluice.errors import InvalidInputError, ParameterValidationError

_MAX_DEPTH = 32


def check_parameters(
    flow_name: str,
    schema: Mapping[str, Any] | None,
    parameters: Mapping[str, Any],
    *,
    complete: bool = True,
) -> None:
    """Raise unless ``parameters`` fit ``schema``.

    Unknown parameter names, missing required ones (when ``complete``: these
    are all the run's parameters, not defaults to be completed later) and
    values of the wrong type are all reported at once, each naming its
    parameter.

    Raises:
        ParameterValidationError: listing ``(parameter, problem)`` pairs.
    """
    if schema is None:
        return
    check_schema_shape(schema)
    errors: list[tuple[str, str]] = []
    properties: Mapping[str, Any] = schema.get("properties") or {}
    open_ended = schema.get("additionalProperties") is True
    for name in parameters:
        if name not in properties and not open_ended:
            known = ", ".join(sorted(properties)) or "none"
            errors.append((name, f"unknown parameter (the flow takes: {known})"))
    for name in schema.get("required") or () if complete else ():
        if name not in parameters:
            errors.append((name, "missing required parameter"))
    for name, value in parameters.items():
        if name in properties:
            try:
                problem = _check(value, properties[name], schema, 0)
            except (TypeError, ValueError, AttributeError, re.error, RecursionError) as exc:
                # A stored schema we cannot read must not fail the caller
                # with a crash: the parameter is reported instead.
                problem = ("", f"cannot be checked: the stored schema is malformed ({exc})")
            if problem is not None:
                errors.append((name + problem[0], problem[1]))
    if errors:
        raise ParameterValidationError(flow_name, errors)


_Problem = tuple[str, str]  # (path suffix like "[2].x", message)


def check_deployment_parameters(
    flow_name: str,
    schema: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
    schedules: Sequence[Mapping[str, Any]],
) -> None:
    """Refuse a deployment's default parameters that do not fit ``schema`` and,
    when it has schedules, any schedule whose runs would lack a required
    parameter: a schedule's runs take the defaults updated with that schedule's
    own ``parameters`` (see :mod:`sluice.scheduling.schedule_options`).

    Raises:
        ParameterValidationError: naming each bad parameter.
    """
    check_parameters(flow_name, schema, defaults, complete=False)
    for own in schedule_parameter_sets(schedules):
        check_parameters(flow_name, schema, {**defaults, **own}, complete=True)


def schedule_parameter_sets(schedules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The distinct ``parameters`` of the active stored schedules (``{}`` for those
    without), in order."""
    found: list[dict[str, Any]] = []
    for stored in schedules:
        if stored.get("active", True) is False:
            continue
        own = dict(stored.get("parameters") or {})
        if own not in found:
            found.append(own)
    return found


def check_schema_shape(schema: Any) -> None:
    """Raise InvalidInputError (a ValueError) unless ``schema`` is None or an object
    schema this module can use.

    Only the top level is checked (``properties`` a mapping of mappings,
    ``required`` a list of names); deeper oddities are reported per
    parameter when runs are checked.
    """
    if schema is None:
        return
    if not isinstance(schema, Mapping):
        raise InvalidInputError(f"a parameter schema must be a JSON object, not {_short(schema)}")
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping) or not all(
        isinstance(v, Mapping) for v in properties.values()
    ):
        raise InvalidInputError("a parameter schema's 'properties' must map names to schemas")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise InvalidInputError("a parameter schema's 'required' must be a list of names")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, type_: str) -> bool:
    actual = _type_name(value)
    if type_ == "number":
        return actual in ("integer", "number")
    if type_ == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == type_


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    return target if isinstance(target, Mapping) else {}


def _check(value: Any, schema: Any, root: Mapping[str, Any], depth: int) -> _Problem | None:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return None
    schema = _resolve(schema, root)
    for check in (_check_type, _check_choices, _check_combinators, _check_bounds):
        problem = check(value, schema, root, depth)
        if problem is not None:
            return problem
    if isinstance(value, dict):
        return _check_object(value, schema, root, depth)
    if isinstance(value, (list, tuple)):
        return _check_array(list(value), schema, root, depth)
    return None


def _check_type(
    value: Any, schema: Mapping[str, Any], _root: Mapping[str, Any], _depth: int
) -> _Problem | None:
    type_ = schema.get("type")
    if type_ is None:
        return None
    types = [type_] if isinstance(type_, str) else list(type_)
    if any(_is_type(value, t) for t in types):
        return None
    return "", f"expected {' or '.join(types)}, got {_type_name(value)} {_short(value)}"


def _check_choices(
    value: Any, schema: Mapping[str, Any], _root: Mapping[str, Any], _depth: int
) -> _Problem | None:
    if "const" in schema and value != schema["const"]:
        return "", f"must be {schema['const']!r}, got {_short(value)}"
    choices = schema.get("enum")
    if isinstance(choices, list) and value not in choices:
        shown = ", ".join(repr(c) for c in choices[:10])
        return "", f"must be one of {shown}, got {_short(value)}"
    return None


def _check_combinators(
    value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], depth: int
) -> _Problem | None:
    for sub in schema.get("allOf") or ():
        problem = _check(value, sub, root, depth + 1)
        if problem is not None:
            return problem
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        problems = [_check(value, sub, root, depth + 1) for sub in options]
        if all(p is not None for p in problems):
            first = next(p for p in problems if p is not None)
            if len(options) == 1:
                return first
            return "", f"matches none of the accepted forms ({first[1]})"
    return None


#: JSON Schema's numeric bounds, each with the test a value that breaks it fails
_BOUND_CHECKS: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = (
    ("minimum", lambda v, b: bool(v < b)),
    ("maximum", lambda v, b: bool(v > b)),
    ("exclusiveMinimum", lambda v, b: bool(v <= b)),
    ("exclusiveMaximum", lambda v, b: bool(v >= b)),
)


def _check_bounds(
    value: Any, schema: Mapping[str, Any], _root: Mapping[str, Any], _depth: int
) -> _Problem | None:
    kind = _type_name(value)
    if kind in ("integer", "number"):
        for key, fails in _BOUND_CHECKS:
            bound = schema.get(key)
            if isinstance(bound, (int, float)) and fails(value, bound):
                return "", f"{value!r} breaks {key} {bound!r}"
        return None
    if kind == "string":
        if "minLength" in schema and len(value) < schema["minLength"]:
            return "", f"shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return "", f"longer than {schema['maxLength']} characters"
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, value) is None:
            return "", f"does not match the pattern {pattern!r}"
    return None


def _check_object(
    value: dict[Any, Any], schema: Mapping[str, Any], root: Mapping[str, Any], depth: int
) -> _Problem | None:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            return f".{name}", "missing required field"
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None:
            if extra is False:
                return f".{key}", "unknown field"
            sub = extra if isinstance(extra, Mapping) else None
        if sub is not None:
            problem = _check(item, sub, root, depth + 1)
            if problem is not None:
                return f".{key}{problem[0]}", problem[1]
    return None


def _check_array(
    value: list[Any], schema: Mapping[str, Any], root: Mapping[str, Any], depth: int
) -> _Problem | None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        return "", f"fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return "", f"more than {schema['maxItems']} items"
    prefix = schema.get("prefixItems") or []
    items = schema.get("items")
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else items
        if sub is False:
            return f"[{index}]", "no item allowed here"
        problem = _check(item, sub, root, depth + 1)
        if problem is not None:
            return f"[{index}]{problem[0]}", problem[1]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
