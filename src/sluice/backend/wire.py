"""The JSON shapes the HTTP backend exchanges with a Sluice server (see ``docs/api.md``).

Records are the dataclasses of :mod:`sluice.schemas`, (de)serialized with
``pydantic.TypeAdapter`` in JSON mode; ingest bodies, the hot path, are
encoded by msgspec (several times faster, the same JSON), with pydantic for
the values msgspec cannot encode. This module builds the request bodies
of ``POST /api/ingest`` from a :class:`~sluice.backend.batcher.WriteBatch`
of snapshots (:mod:`sluice.backend.record_writes`; each kind's records go
into the body's section of the same name as its write group, rebuilt from
their snapshots by the record's codec) and decodes read responses. It
imports pydantic, so it is only imported in client mode.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

from sluice.api_schemas import AttemptFence, HeartbeatWrite, IngestBatch
from sluice.backend.batcher import WriteBatch
from sluice.store.write_groups import CODECS, GROUP_NAMES, KEYED_KINDS, RecordKind

#: a request body above this many bytes is split in two (the server takes 16 MiB)
MAX_BODY_BYTES = 12 * 1024 * 1024
#: records in one request body at most (the server takes 100,000)
MAX_BODY_RECORDS = 20_000


@cache
def adapter(tp: Any) -> TypeAdapter[Any]:
    """One (cached) TypeAdapter per type: building one costs milliseconds."""
    return TypeAdapter(tp)


_ENCODER = msgspec.json.Encoder()


def encode_batch(batch: IngestBatch) -> bytes:
    """The JSON body of one ingest request.

    Text that is not valid Unicode (lone surrogates, which JSON cannot carry as
    UTF-8) has those characters replaced by U+FFFD rather than failing the batch.
    """
    try:
        return _ENCODER.encode(batch)
    except (TypeError, ValueError):
        # A value msgspec has no encoding for (a Path among a state's
        # details, say; UnicodeEncodeError is a ValueError): pydantic's JSON
        # mode encodes more types, or the fallback below replaces what is not
        # valid Unicode.
        pass
    try:
        return adapter(IngestBatch).dump_json(batch)
    except PydanticSerializationError:
        plain = adapter(IngestBatch).dump_python(batch, mode="json")
        text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()


def decode(tp: Any, content: bytes) -> Any:
    """Validate a JSON response body as ``tp`` (a record type, a list of them ...)."""
    return adapter(tp).validate_json(content)


def encode_time(value: _dt.datetime) -> str:
    """A datetime as the API expects it in queries and bodies (ISO-8601, with zone)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.isoformat()


# -- from a write batch to request bodies ---------------------------------------------

#: one record of a request body: (section, entry, its appended kind or None if keyed)
_Part = tuple[str, Any, int | None]
#: ``(flow run id, attempt)`` pairs a sender holds
Fences = Sequence[tuple[str, int]]


#: (kind, its body section, keyed?, snapshot -> record) of the record kinds, in body order
_SECTIONS = tuple(
    (kind, GROUP_NAMES[kind], kind in KEYED_KINDS, CODECS[kind].from_snapshot) for kind in CODECS
)
_HEARTBEATS = GROUP_NAMES[RecordKind.HEARTBEAT]


def _parts(batch: WriteBatch, skip: dict[int, int]) -> list[_Part]:
    """Every record of ``batch`` in body order; appended items already delivered
    (``skip``: kind -> how many) are left out. Keyed records are always included:
    upserting them again is harmless. A state names its run by id, so each run
    goes on the wire once per batch however many states it went through."""
    latest, appended = batch.latest, batch.appended
    parts: list[_Part] = []
    for kind, section, keyed, record_of in _SECTIONS:
        if keyed:
            snapshots: Any = latest.get(kind, {}).values()
            parts.extend([(section, record, None) for record in map(record_of, snapshots)])
        else:
            snapshots = appended.get(kind, [])[skip.get(kind, 0) :]
            parts.extend([(section, record, kind) for record in map(record_of, snapshots)])
    for run_id, at in latest.get(RecordKind.HEARTBEAT, {}).items():
        parts.append((_HEARTBEATS, HeartbeatWrite(str(run_id), at), None))
    return parts


def _batch_of(parts: Sequence[_Part], resent: bool, fences: Fences = ()) -> IngestBatch:
    body = IngestBatch(resent=resent, fences=[AttemptFence(r, n) for r, n in fences])
    for section, entry, _kind in parts:
        getattr(body, section).append(entry)
    return body


@dataclass(slots=True)
class Body:
    """One ingest request: its JSON, the records in it, the appended records it
    delivers (kind -> count), so a retry after a partial failure skips them, and
    whether it is marked resent."""

    data: bytes
    parts: Sequence[_Part]
    delivered: dict[int, int]
    resent: bool = False
    #: the attempts the sender holds, sent with every body (see AttemptFence)
    fences: Fences = ()

    def halves(self) -> list[Body]:
        """The same records as two bodies (to isolate a record the server refuses)."""
        middle = len(self.parts) // 2
        return [
            _body(self.parts[:middle], self.resent, self.fences),
            _body(self.parts[middle:], self.resent, self.fences),
        ]

    def describe(self) -> str:
        """What the body holds, for error messages (its first record)."""
        section, entry, _kind = self.parts[0]
        return f"{len(self.parts)} record(s) of {section}, first: {entry!r}"[:1000]


def request_bodies(
    batch: WriteBatch, skip: dict[int, int], *, resent: bool = False, fences: Fences = ()
) -> Iterator[Body]:
    """The request bodies that deliver ``batch``, in order, within the server's size
    limits; appended records already delivered (``skip``: kind -> count) are left out.

    Args:
        resent: mark the bodies as possibly delivered already (a retry after a
            failure whose outcome the client does not know).
        fences: ``(flow run id, attempt)`` pairs the sender holds, in every body.
    """
    parts = _parts(batch, skip)
    for start in range(0, len(parts), MAX_BODY_RECORDS):
        yield from _sized(parts[start : start + MAX_BODY_RECORDS], resent, fences)


def _sized(parts: Sequence[_Part], resent: bool, fences: Fences) -> Iterator[Body]:
    body = _body(parts, resent, fences)
    if len(body.data) > MAX_BODY_BYTES and len(parts) > 1:
        for half in body.halves():
            yield from _sized(half.parts, resent, fences)
        return
    yield body


def _body(parts: Sequence[_Part], resent: bool, fences: Fences = ()) -> Body:
    delivered: dict[int, int] = {}
    for _section, _entry, kind in parts:
        if kind is not None:
            delivered[kind] = delivered.get(kind, 0) + 1
    data = encode_batch(_batch_of(parts, resent, fences))
    return Body(data, parts, delivered, resent, fences)
