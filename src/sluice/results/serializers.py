"""Serializers for results: JSON for plain data, cloudpickle for everything else.

JSON is chosen only for values that come back *exactly* as they went in
(dicts with string keys, lists, strings, numbers, booleans, None): a tuple
would come back as a list, and a replayed result must equal the original.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sluice.errors import SerializationError

_JSON_SCALARS = (str, int, float, bool, type(None))
#: how deep ``is_plain_json`` looks before giving up and choosing pickle
_MAX_DEPTH = 32


class Serializer(Protocol):
    """Turns values into bytes and back."""

    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, blob: bytes) -> Any: ...


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """True when JSON round-trips ``value`` to an equal value of the same types."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return kind is not float or (value == value and abs(value) != float("inf"))
    if depth >= _MAX_DEPTH:
        return False
    if kind is list:
        return all(is_plain_json(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and is_plain_json(v, depth + 1) for k, v in value.items())
    return False


class JSONSerializer:
    """JSON text; only for values :func:`is_plain_json` accepts."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError("result", type(value).__name__, str(exc)) from exc

    def loads(self, blob: bytes) -> Any:
        return json.loads(blob)


class PickleSerializer:
    """cloudpickle, for any Python object (functions and classes included)."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        import cloudpickle

        try:
            blob: bytes = cloudpickle.dumps(value)
            return blob
        except Exception as exc:
            raise SerializationError("result", type(value).__name__, str(exc)) from exc

    def loads(self, blob: bytes) -> Any:
        import cloudpickle

        return cloudpickle.loads(blob)


SERIALIZERS: dict[str, Serializer] = {"json": JSONSerializer(), "pickle": PickleSerializer()}


def resolve_serializer(choice: str | Serializer | None) -> Serializer | None:
    """``"json"``, ``"pickle"``, a serializer object, or None for automatic choice.

    Raises:
        ValueError: an unknown serializer name.
    """
    if choice is None or not isinstance(choice, str):
        return choice
    try:
        return SERIALIZERS[choice]
    except KeyError:
        known = ", ".join(sorted(SERIALIZERS))
        raise ValueError(
            f"unknown result_serializer {choice!r}; expected one of: {known}"
        ) from None
