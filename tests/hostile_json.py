"""Hostile request bodies for fuzzing the API: JSON a lax parser takes but nothing can use.

Python's ``json`` parser accepts ``NaN``, ``Infinity``, ``1e999999`` (as
``inf``), lone surrogates (``"\\ud800"``, a ``str`` that cannot be encoded as
UTF-8) and integers of any size up to 4,300 digits; nesting 5,000 levels deep
exhausts its recursion. Each is a client's mistake (or an attack) that must
get a 4xx, never a 5xx or a dropped connection.

A hostile value is put at one position of a body an API schema generated:
the position is replaced by a marker string, the body encoded, and the
marker's JSON text replaced by the hostile bytes (no encoder writes them).
"""

from __future__ import annotations

import json
from typing import Any

#: stands for the position being replaced (no generator produces it)
_MARKER = "\u2063sluice-hostile-marker\u2063"
_MARKER_JSON = json.dumps(_MARKER).encode()

#: values: put where any JSON value may stand
HOSTILE_VALUES: dict[str, bytes] = {
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "lone high surrogate": b'"\\ud800"',
    "lone low surrogate": b'"x\\udfffy"',
    "1e999999": b"1e999999",
    "-1e999999": b"-1e999999",
    "2**64": str(2**64).encode(),
    "-(2**70)": str(-(2**70)).encode(),
    "5,000-digit integer": b"9" * 5000,
    "5,000-deep list": b"[" * 5000 + b"]" * 5000,
    "5,000-deep object": b'{"a":' * 5000 + b"null" + b"}" * 5000,
}
#: keys: put where an object key stands
HOSTILE_KEYS: dict[str, bytes] = {
    "lone surrogate key": b'"\\ud800"',
    "lone low surrogate key": b'"k\\udc00"',
}
HOSTILE_KINDS = sorted(HOSTILE_VALUES) + sorted(HOSTILE_KEYS)
#: kinds JSON's grammar allows: a server refuses them where it reads them
#: (unless they fit: an integer parameter may have any size) and may accept a
#: body holding them where it ignores them (an unknown field); never a 5xx
VALID_JSON_KINDS = frozenset({"2**64", "-(2**70)", "1e999999", "-1e999999", "5,000-digit integer"})

Path = tuple[Any, ...]


def positions(body: Any, path: Path = ()) -> list[Path]:
    """Every position in ``body`` a value can be put at: the body itself, and each
    item of its lists and objects, depth first."""
    found = [path]
    if isinstance(body, dict):
        for key, item in body.items():
            found += positions(item, (*path, key))
    elif isinstance(body, list):
        for index, item in enumerate(body):
            found += positions(item, (*path, index))
    return found


def objects(body: Any, path: Path = ()) -> list[Path]:
    """The positions of the objects (dicts) in ``body``."""
    return [p for p in positions(body, path) if isinstance(_at(body, p), dict)]


def _at(body: Any, path: Path) -> Any:
    for step in path:
        body = body[step]
    return body


def _replace(body: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: _replace(body[head], rest, value)}
    copy = list(body)
    copy[head] = _replace(copy[head], rest, value)
    return copy


def _add_key(body: Any, path: Path) -> Any:
    target = _at(body, path)
    return _replace(body, path, {**target, _MARKER: 1})


def hostile_body(body: Any, kind: str, choice: int) -> bytes:
    """``body`` encoded as JSON with the hostile ``kind`` at one position.

    Args:
        body: a JSON value (from a schema's generator); anything, even None.
        kind: one of :data:`HOSTILE_KINDS`.
        choice: which position (taken modulo their number), so a fuzzer can pick.
    """
    if kind in HOSTILE_KEYS:
        places = objects(body)
        if not places:  # no object to add a key to: the body becomes one
            body, places = {"value": body}, [()]
        marked = _add_key(body, places[choice % len(places)])
        hostile = HOSTILE_KEYS[kind]
    else:
        places = positions(body)
        marked = _replace(body, places[choice % len(places)], _MARKER)
        hostile = HOSTILE_VALUES[kind]
    encoded = json.dumps(marked, ensure_ascii=True, allow_nan=False).encode()
    assert encoded.count(_MARKER_JSON) == 1
    return encoded.replace(_MARKER_JSON, hostile)
