"""Records of :mod:`sluice.schemas` to table rows and back, derived from their declarations.

For each stored record a :class:`RecordCodec` holds the conversions, made
from the record's columns (:func:`sluice.store.declarations.columns_of`) by
field name and compiled once into plain Python functions, as
``collections.namedtuple`` does: each is as fast as one written by hand,
and none can drift from the declaration.

Writes go in two steps because the engine keeps mutating the records it hands
over: a *snapshot* (a plain tuple, taken on the caller's thread; it must cost
a fraction of a microsecond, so it copies references, lists as tuples, and
encodes only dicts) and its column *values* (built later on the writer thread,
where JSON encoding and time conversion happen only for the snapshots that
survive coalescing), which the SQLite writer binds as they are. A snapshot
holds the *batched* columns (write policies ``every``, ``kept``,
``forward``): those the engine's writes carry.

Times become epoch seconds, JSON-ish fields compact JSON text, enums their
value (read as ``_value_``: ``.value`` is a Python-level property, and the
writer reads it for every state).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.store.declarations import (
    KEPT_ON_UPSERT,
    ColumnSpec,
    batched,
    columns_of,
)

R = TypeVar("R")
Row = dict[str, Any]
#: a record's batched columns as taken on the caller's thread (see the module doc)
Snapshot = tuple[Any, ...]
_UTC = _dt.timezone.utc


def _json_default(value: Any) -> str:
    # A value the engine did not make JSON-safe must not break the writer:
    # it is kept as its repr rather than losing the whole batch.
    return repr(value)


#: The one JSON encoder of the store. Compact separators keep rows small and
#: make ``"tag"`` a reliable substring of an encoded tag list (see queries).
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode

_EMPTY_JSON = frozenset({"[]", "{}"})


def _loads(text: str | None, empty: Callable[[], Any]) -> Any:
    # Most tag and upstream lists are empty: skip the decoder for them (a
    # journal of 10,000 task runs decodes three of these per row).
    if text is None or text in _EMPTY_JSON:
        return empty()
    return json.loads(text)


def dt(value: float | None) -> _dt.datetime | None:
    """Epoch seconds as a UTC datetime (``None`` stays ``None``)."""
    return None if value is None else _dt.datetime.fromtimestamp(value, _UTC)


# -- code generation ---------------------------------------------------------------------


#: how a value is stored, as a template over ``{v}`` (None: as it is)
_ENCODERS = {
    "plain": None,
    "bool": "bool({v})",
    "time": "{v}.timestamp()",
    "enum": "{v}._value_",
    "strings": 'dumps({v}) if {v} else "[]"',
    "json": "dumps({v})",
}
#: how a snapshot holds a value (None: as it is): lists as tuples, other JSON as text
_SNAPSHOTS = {"strings": "tuple({v})", "json": "dumps({v})"}
#: the stored form of a snapshot's value: that of a record's but for JSON, encoded already
_VALUES = {**_ENCODERS, "json": None}
#: the value again from a snapshot (None: as it is)
_UNSNAPSHOTS = {"strings": "list({v})", "json": "loads({v})"}
#: a stored value decoded (None: as it is); JSON that is not optional: see _decoded
_DECODERS = {
    "plain": None,
    "bool": "bool({v})",
    "time": "fromtimestamp({v}, UTC)",
    "enum": "E_{name}({v})",
    "strings": "loads({v})",
    "json": "loads({v})",
}


def _applied(spec: ColumnSpec, template: str | None, value: str) -> str:
    """``template`` applied to the expression ``value`` (None stays None for a field
    that takes None; the value is read once)."""
    if template is None:
        return value
    if spec.optional and value.isidentifier():
        return f"None if {value} is None else {template.format(v=value, name=spec.name)}"
    if spec.optional:
        return f"None if (v := {value}) is None else {template.format(v='v', name=spec.name)}"
    return template.format(v=value, name=spec.name)


def _encoded(spec: ColumnSpec, value: str) -> str:
    """The stored form of a field's value ``value`` (an expression)."""
    return _applied(spec, _ENCODERS[spec.encoding], value)


def _decoded(spec: ColumnSpec, value: str) -> str:
    """The field's value from its stored form ``value`` (an expression)."""
    if spec.encoding in ("strings", "json") and not spec.optional:
        # NULL (a column added to existing rows) and empty text: a new empty value.
        return f"_loads({value}, F_{spec.name})"
    template = _DECODERS[spec.encoding]
    if spec.nullable and not spec.optional:
        # NULL in a column added to existing rows reads as the field's default.
        decoded = "v" if template is None else template.format(v="v", name=spec.name)
        return f"F_{spec.name}() if (v := {value}) is None else {decoded}"
    return _applied(spec, template, value)


def _compile(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    code = compile(source, f"<sluice.store.rows {name}>", "exec")
    exec(code, namespace)
    function: Callable[..., Any] = namespace[name]
    return function


class RecordCodec(Generic[R]):
    """The conversions of one stored record, derived from its declaration.

    Attributes:
        record: the record's dataclass.
        columns: its columns, in table order.
        batched: the columns the engine's batched writes carry, in table order
            (the order of :meth:`snapshot` and :meth:`values`).
        kept: columns an upsert of the record leaves as stored (``kept``,
            ``operation`` and ``store`` write policies).
        forward: columns whose stored value only moves forward.
    """

    def __init__(self, record: type[R]) -> None:
        self.record = record
        declared: type = record
        self._fields = [f.name for f in dataclasses.fields(declared)]
        self.columns = columns_of(declared)
        self.batched = batched(self.columns)
        self.kept = tuple(c.name for c in self.columns if c.write in KEPT_ON_UPSERT)
        self.forward = tuple(c.name for c in self.columns if c.write == "forward")
        #: names of :attr:`batched`: the parameters of a batch write, in order
        self.batched_names = tuple(c.name for c in self.batched)

    def __repr__(self) -> str:
        return f"RecordCodec({self.record.__name__})"

    def _namespace(self) -> dict[str, Any]:
        namespace: dict[str, Any] = {
            "Record": self.record,
            "dumps": dumps,
            "loads": json.loads,
            "_loads": _loads,
            "fromtimestamp": _dt.datetime.fromtimestamp,
            "UTC": _UTC,
        }
        for spec in self.columns:
            namespace[f"E_{spec.name}"] = spec.enum
            namespace[f"F_{spec.name}"] = spec.default
        return namespace

    @functools.cached_property
    def snapshot(self) -> Callable[[R], Snapshot]:
        """An immutable copy of a record's batched columns (cheap: the caller's thread)."""
        items = ", ".join(
            _applied(c, _SNAPSHOTS.get(c.encoding), f"r.{c.name}") for c in self.batched
        )
        source = f"def snapshot(r):\n    return ({items},)\n"
        return _compile("snapshot", source, self._namespace())

    @functools.cached_property
    def values(self) -> Callable[[Snapshot], tuple[Any, ...]]:
        """The column values of a :meth:`snapshot`, in :attr:`batched` order (what the
        SQLite writer binds: the generated statements take their parameters in this
        order, a test checks it)."""
        names = [f"a{i}" for i in range(len(self.batched))]
        at = {c.name: name for c, name in zip(self.batched, names, strict=True)}
        lines = [f"    {', '.join(names)}, = s"]
        exprs = []
        reused = {o for c in self.batched for o in c.often_same_as}
        for spec, name in zip(self.batched, names, strict=True):
            if spec.name in reused or spec.often_same_as:
                # Converted once into c<i>; a time field that is often the very
                # same datetime object as an earlier one reuses its conversion.
                conversion = _applied(spec, _VALUES[spec.encoding], name)
                for other in reversed(spec.often_same_as):
                    conversion = f"c{at[other]} if {name} is {at[other]} else {conversion}"
                lines.append(f"    c{name} = {conversion}")
                exprs.append(f"c{name}")
            else:
                exprs.append(_applied(spec, _VALUES[spec.encoding], name))
        lines.append(f"    return ({', '.join(exprs)},)")
        source = "def values(s):\n" + "\n".join(lines) + "\n"
        return _compile("values", source, self._namespace())

    @functools.cached_property
    def row(self) -> Callable[[R], Row]:
        """The row of a record for an INSERT: every column but those the store stamps."""
        items = ", ".join(
            f'"{c.name}": {_encoded(c, f"r.{c.name}")}' for c in self.columns if c.write != "store"
        )
        return _compile("row", f"def row(r):\n    return {{{items}}}\n", self._namespace())

    @functools.cached_property
    def from_row(self) -> Callable[[Mapping[Any, Any]], R]:
        """The record of a row (a mapping of column names, as SQLAlchemy reads it)."""
        # Positional, in the dataclass's field order: cheaper than keywords.
        by_name = {c.name: c for c in self.columns}
        items = ", ".join(_decoded(by_name[name], f"m[{name!r}]") for name in self._fields)
        source = f"def from_row(m):\n    return Record({items})\n"
        return _compile("from_row", source, self._namespace())

    @functools.cached_property
    def from_snapshot(self) -> Callable[[Snapshot], R]:
        """The record of a :meth:`snapshot` (its other fields at their defaults): what
        client mode sends."""
        at = {c.name: i for i, c in enumerate(self.batched)}
        by_name = {c.name: c for c in self.columns}
        items = []
        # Positional, in the dataclass's field order: cheaper than keywords.
        for name in self._fields:
            if name in at:
                spec = by_name[name]
                items.append(_applied(spec, _UNSNAPSHOTS.get(spec.encoding), f"s[{at[name]}]"))
            else:
                items.append(f"F_{name}()")
        source = f"def from_snapshot(s):\n    return Record({', '.join(items)})\n"
        return _compile("from_snapshot", source, self._namespace())


_CODECS: dict[type, RecordCodec[Any]] = {}


def codec(record: type[R]) -> RecordCodec[R]:
    """The conversions of the stored record ``record`` (made once)."""
    found: RecordCodec[R] | None = _CODECS.get(record)
    if found is None:
        found = _CODECS[record] = RecordCodec(record)
    return found


FLOW = codec(FlowRecord)
FLOW_RUN = codec(FlowRunRecord)
TASK_RUN = codec(TaskRunRecord)
STATE = codec(StateRecord)
LOG = codec(LogRecord)


def flow_row(rec: FlowRecord) -> Row:
    """The ``flow`` row of a flow record."""
    return FLOW.row(rec)


def flow_run_row(rec: FlowRunRecord) -> Row:
    """The ``flow_run`` row of a flow run record (for an INSERT: with the columns its
    deployment sets)."""
    return FLOW_RUN.row(rec)


def flow_from_row(m: Mapping[Any, Any]) -> FlowRecord:
    """A flow record from a ``flow`` row."""
    return FLOW.from_row(m)


def flow_run_from_row(m: Mapping[Any, Any]) -> FlowRunRecord:
    """A flow run record from a ``flow_run`` row."""
    return FLOW_RUN.from_row(m)


def task_run_from_row(m: Mapping[Any, Any]) -> TaskRunRecord:
    """A task run record from a ``task_run`` row."""
    return TASK_RUN.from_row(m)


def state_from_row(m: Mapping[Any, Any]) -> StateRecord:
    """A state record from a ``run_state`` row."""
    return STATE.from_row(m)


def log_from_row(m: Mapping[Any, Any]) -> LogRecord:
    """A log record from a ``log`` row."""
    return LOG.from_row(m)


__all__ = [
    "FLOW",
    "FLOW_RUN",
    "LOG",
    "STATE",
    "TASK_RUN",
    "RecordCodec",
    "Row",
    "Snapshot",
    "codec",
    "dt",
    "dumps",
    "flow_from_row",
    "flow_row",
    "flow_run_from_row",
    "flow_run_row",
    "log_from_row",
    "state_from_row",
    "task_run_from_row",
]
