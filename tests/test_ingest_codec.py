"""The ingest hot path's codecs: msgspec on both ends, pydantic for everything else.

The client encodes ingest bodies with msgspec and the server reads them with
a strict msgspec decoder first; pydantic takes over for values msgspec does
not encode and bodies the strict decoder refuses. These tests pin that both
ways give the same records, so the fast path is a speed-up and nothing else.
"""

from __future__ import annotations

import ipaddress
import json

from pydantic import TypeAdapter

from sluice.api_schemas import IngestBatch
from sluice.backend import wire
from sluice.server.api.ingest import _STRICT_BATCH, parse_batch
from tests.server_helpers import full_batch

PYDANTIC = TypeAdapter(IngestBatch)


def test_client_bodies_take_the_servers_fast_path_to_the_same_records() -> None:
    batch = full_batch()
    body = wire.encode_batch(batch)
    # The strict decoder reads what the client sends (else every request
    # would silently take the slow way) ...
    assert _STRICT_BATCH.decode(body) == batch
    # ... to the records pydantic reads from the same body.
    assert PYDANTIC.validate_json(body) == batch
    assert parse_batch(body) == batch


def test_a_body_the_strict_decoder_refuses_is_read_by_pydantic() -> None:
    batch = full_batch()
    plain = json.loads(wire.encode_batch(batch))
    # Valid for the API (pydantic's lax mode) but not for msgspec's strict one.
    plain["logs"][0]["level"] = "40"
    plain["task_runs"][0]["call_index"] = 3.0
    body = json.dumps(plain).encode()
    assert parse_batch(body) == batch


def test_values_msgspec_cannot_encode_go_through_pydantic() -> None:
    batch = full_batch()
    batch.states[0].details = {"host": ipaddress.IPv4Address("10.0.0.1")}
    body = wire.encode_batch(batch)
    assert json.loads(body)["states"][0]["details"] == {"host": "10.0.0.1"}


def test_text_that_is_not_unicode_is_replaced_not_refused() -> None:
    batch = full_batch()
    batch.logs[0].message = "bad \ud800 text"
    body = wire.encode_batch(batch)
    parsed = parse_batch(body)
    message = parsed.logs[0].message
    assert message.startswith("bad \ufffd") and message.endswith("\ufffd text")
    assert parsed.logs[0].logger == "sluice.task"  # the rest of the batch as it was
