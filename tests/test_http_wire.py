"""Request bodies of the HTTP backend: what one write batch becomes on the wire."""

from __future__ import annotations

import datetime as dt
import json

from pydantic import TypeAdapter

from sluice.api_schemas import IngestBatch as ServerIngestBatch
from sluice.backend import wire
from sluice.backend.batcher import WriteBatch
from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord, new_id
from sluice.states import Completed, Pending, Running
from sluice.store.rows import task_run_snapshot

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def task_batch() -> tuple[WriteBatch, TaskRunRecord]:
    batch = WriteBatch()
    run = TaskRunRecord(new_id(), "t", "t-0", new_id())
    for state in (Pending(timestamp=T0), Running(timestamp=T0), Completed(timestamp=T0)):
        run.apply(state)
        snapshot = task_run_snapshot(run)
        batch.add(wire.TASK_RUN, run.id, snapshot)
        batch.add(wire.TASK_STATE, None, (snapshot, StateRecord.from_state(run.id, "task", state)))
    return batch, run


def test_states_are_sent_with_the_latest_copy_of_their_run() -> None:
    batch, run = task_batch()
    flow_run = FlowRunRecord(new_id(), "etl", "r", parameters={"xs": [1, 2]})
    batch.add(wire.FLOW, None, FlowRecord("etl"))
    batch.add(wire.FLOW_RUN, flow_run.id, flow_run)
    batch.add(wire.HEARTBEAT, flow_run.id, T0)
    (body,) = wire.request_bodies(batch, {})
    # The server's own model of the body accepts it.
    decoded = TypeAdapter(ServerIngestBatch).validate_json(body.data)
    assert [e.state.name for e in decoded.task_runs if e.state] == [
        "Pending",
        "Running",
        "Completed",
    ]
    assert all(e.run == run for e in decoded.task_runs)
    assert decoded.flow_runs[0].run == flow_run and decoded.flow_runs[0].state is None
    assert decoded.heartbeats[0].at == T0
    assert body.delivered == {wire.FLOW: 1, wire.TASK_STATE: 3}
    assert json.loads(body.data)["task_runs"][0]["run"]["state_type"] == "COMPLETED"


def test_delivered_appended_records_are_skipped_but_rows_resent() -> None:
    batch, _run = task_batch()
    (body,) = wire.request_bodies(batch, {wire.TASK_STATE: 2})
    entries = json.loads(body.data)["task_runs"]
    assert [e["state"]["name"] for e in entries] == ["Completed"]
    assert body.delivered == {wire.TASK_STATE: 1}
    (body,) = wire.request_bodies(batch, {wire.TASK_STATE: 3})
    entries = json.loads(body.data)["task_runs"]
    assert len(entries) == 1 and entries[0]["state"] is None  # the row alone, again


def test_large_batches_are_split_under_the_server_limits() -> None:
    batch = WriteBatch()
    line = "x" * 4096
    count = 6000  # about 25 MB of log lines
    for i in range(count):
        batch.add(wire.LOG, None, LogRecord(None, None, 20, "big", f"{i}{line}", T0))
    bodies = list(wire.request_bodies(batch, {}))
    assert len(bodies) > 1
    assert all(len(body.data) <= wire.MAX_BODY_BYTES for body in bodies)
    assert sum(body.delivered[wire.LOG] for body in bodies) == count
    messages = [log["message"] for body in bodies for log in json.loads(body.data)["logs"]]
    assert [int(m[: -len(line)]) for m in messages] == list(range(count))


def test_text_that_is_not_unicode_is_replaced_not_fatal() -> None:
    batch = WriteBatch()
    batch.add(wire.LOG, None, LogRecord(None, None, 20, "app", "bad \ud800 byte", T0))
    (body,) = wire.request_bodies(batch, {})
    message = json.loads(body.data)["logs"][0]["message"]
    assert message.startswith("bad ") and message.endswith(" byte") and "\ufffd" in message


def test_halves_keep_every_record_in_order() -> None:
    batch, _run = task_batch()
    (body,) = wire.request_bodies(batch, {})
    first, second = body.halves()
    assert [*first.parts, *second.parts] == list(body.parts)
    assert first.delivered[wire.TASK_STATE] + second.delivered[wire.TASK_STATE] == 3
