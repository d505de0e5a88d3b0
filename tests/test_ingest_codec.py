"""The ingest hot path's codecs: msgspec on both ends, pydantic for everything else.

The client encodes ingest bodies with msgspec and the server reads them with
a strict msgspec decoder first; pydantic takes over for values msgspec does
not encode and bodies the strict decoder refuses. These tests pin that both
ways give the same records, so the fast path is a speed-up and nothing else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json

from pydantic import TypeAdapter

from sluice.api_schemas import HeartbeatWrite, IngestBatch
from sluice.backend import wire
from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.server.api.ingest import _STRICT_BATCH, parse_batch
from sluice.states import StateType

T0 = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone.utc)
PYDANTIC = TypeAdapter(IngestBatch)


def full_batch() -> IngestBatch:
    """One record of each kind, with every optional field set."""
    flow_run = FlowRunRecord(
        new_id(), "etl", "r", parameters={"xs": [1, 2], "when": "x"}, tags=["a"],
        state_type=StateType.RUNNING, state_name="Running", run_count=1, start_time=T0,
        heartbeat=T0, hostname="h", pid=7, entrypoint="f.py:etl",
    )  # fmt: skip
    task_run = TaskRunRecord(
        new_id(), "t", "t-3", flow_run.id, call_index=3, map_index=2, tags=["b"],
        upstream_ids=[new_id()], state_type=StateType.COMPLETED, state_name="Cached",
        run_count=2, start_time=T0, end_time=T0, cache_key="k", cache_expiration=T0,
        input_hash="h", result='{"s":"json","v":1}',
    )  # fmt: skip
    state = StateRecord(task_run.id, "task", StateType.FAILED, "Failed", T0, "boom", {"n": 1})
    log = LogRecord(flow_run.id, task_run.id, 40, "sluice.task", "héllo ✓", T0)
    return IngestBatch(
        flows=[FlowRecord("etl", created=T0)],
        flow_runs=[flow_run],
        task_runs=[task_run],
        states=[state],
        logs=[log],
        heartbeats=[HeartbeatWrite(flow_run.id, T0)],
        resent=True,
    )


def test_client_bodies_take_the_servers_fast_path_to_the_same_records() -> None:
    batch = full_batch()
    body = wire.encode_batch(batch)
    # The strict decoder reads what the client sends (else every request
    # would silently take the slow way) ...
    assert _STRICT_BATCH.decode(body) == batch
    # ... to the records pydantic reads from the same body.
    assert PYDANTIC.validate_json(body) == batch
    assert parse_batch(body) == (batch, True)


def test_a_body_the_strict_decoder_refuses_is_read_by_pydantic() -> None:
    batch = full_batch()
    plain = json.loads(wire.encode_batch(batch))
    # Valid for the API (pydantic's lax mode) but not for msgspec's strict one.
    plain["logs"][0]["level"] = "40"
    plain["task_runs"][0]["call_index"] = 3.0
    body = json.dumps(plain).encode()
    parsed, unicode_checked = parse_batch(body)
    assert parsed == batch
    assert unicode_checked


def test_values_msgspec_cannot_encode_go_through_pydantic() -> None:
    batch = full_batch()
    batch.states[0].details = {"host": ipaddress.IPv4Address("10.0.0.1")}
    body = wire.encode_batch(batch)
    assert json.loads(body)["states"][0]["details"] == {"host": "10.0.0.1"}


def test_text_that_is_not_unicode_is_replaced_not_refused() -> None:
    batch = full_batch()
    batch.logs[0].message = "bad \ud800 text"
    body = wire.encode_batch(batch)
    parsed, _ = parse_batch(body)
    message = parsed.logs[0].message
    assert message.startswith("bad \ufffd") and message.endswith("\ufffd text")
    assert parsed.logs[0].logger == "sluice.task"  # the rest of the batch as it was
