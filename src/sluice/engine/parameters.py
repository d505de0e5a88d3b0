"""Binding call arguments to a signature, validating them, and summarizing them as JSON.

Validation uses pydantic, imported only when a value does not already match
its annotation: most calls pass values of the annotated type and should not
pay pydantic's import and model-building cost.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sluice.errors import ParameterValidationError

_SIMPLE_TYPES = (int, float, str, bool, bytes, list, dict, tuple, set, frozenset)
_MAX_REPR = 1000


@lru_cache(maxsize=1024)
def signature_of(fn: Callable[..., Any]) -> inspect.Signature:
    """The (cached) signature of ``fn``."""
    return inspect.signature(fn)


def bind_arguments(
    fn: Callable[..., Any],
    owner: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    defaults: bool = True,
) -> dict[str, Any]:
    """Map a call's arguments to parameter names (with defaults filled in if ``defaults``).

    Raises:
        ParameterValidationError: missing, unexpected or duplicated arguments.
    """
    sig = signature_of(fn)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise ParameterValidationError(owner, [("(call)", str(exc))]) from None
    if defaults:
        bound.apply_defaults()
    return dict(bound.arguments)


def call_arguments(
    fn: Callable[..., Any], parameters: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Turn a parameters mapping back into positional and keyword arguments."""
    bound = inspect.BoundArguments(signature_of(fn), parameters)
    return bound.args, bound.kwargs


@lru_cache(maxsize=1024)
def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        # Unresolvable forward references: validate only what we can see.
        return {
            name: p.annotation
            for name, p in signature_of(fn).parameters.items()
            if not isinstance(p.annotation, str)
        }


def _already_valid(value: Any, annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return True
    if annotation in _SIMPLE_TYPES:
        if annotation is float and isinstance(value, int) and not isinstance(value, bool):
            return False  # let pydantic coerce int -> float
        return isinstance(value, annotation)
    return False


def validate_parameters(
    fn: Callable[..., Any], owner: str, parameters: dict[str, Any]
) -> dict[str, Any]:
    """Check (and coerce, as pydantic does) ``parameters`` against ``fn``'s type hints.

    Raises:
        ParameterValidationError: naming every field that failed.
    """
    hints = _type_hints(fn)
    sig = signature_of(fn)
    checked = {
        name: hints[name]
        for name, p in sig.parameters.items()
        if name in hints and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    if all(_already_valid(parameters.get(n), a) for n, a in checked.items() if n in parameters):
        return parameters
    model = _model_for(fn)
    import pydantic

    try:
        validated = model.model_validate({n: parameters[n] for n in checked if n in parameters})
    except pydantic.ValidationError as exc:
        errors = [
            (".".join(str(part) for part in err["loc"]) or "(value)", err["msg"])
            for err in exc.errors()
        ]
        raise ParameterValidationError(owner, errors) from None
    out = dict(parameters)
    for name in checked:
        if name in parameters:
            out[name] = getattr(validated, name)
    return out


@lru_cache(maxsize=256)
def _model_for(fn: Callable[..., Any]) -> Any:
    import pydantic

    hints = _type_hints(fn)
    sig = signature_of(fn)
    fields: dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if name not in hints or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is p.empty else p.default
        fields[name] = (hints[name], default)
    config = pydantic.ConfigDict(arbitrary_types_allowed=True)
    return pydantic.create_model(f"{fn.__name__}_parameters", __config__=config, **fields)


def _fallback(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


def jsonable(parameters: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of ``parameters`` for the record (unknown objects become reprs)."""
    try:
        copy: dict[str, Any] = json.loads(json.dumps(parameters, default=_fallback))
        return copy
    except (TypeError, ValueError):
        return {k: _fallback(v) for k, v in parameters.items()}
