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
from sluice.store.rows import FLOW, FLOW_RUN, LOG, STATE, TASK_RUN
from sluice.store.write_groups import RecordKind

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def task_batch() -> tuple[WriteBatch, TaskRunRecord]:
    batch = WriteBatch()
    run = TaskRunRecord(new_id(), "t", "t-0", new_id())
    for state in (Pending(timestamp=T0), Running(timestamp=T0), Completed(timestamp=T0)):
        run.apply(state)
        batch.add(RecordKind.TASK_RUN, run.id, TASK_RUN.snapshot(run))
        state_record = StateRecord.from_state(run.id, "task", state)
        batch.add(RecordKind.STATE, None, STATE.snapshot(state_record))
    return batch, run


def test_a_run_goes_once_with_its_latest_copy_and_states_after() -> None:
    batch, run = task_batch()
    flow_run = FlowRunRecord(new_id(), "etl", "r", parameters={"xs": [1, 2]})
    batch.add(RecordKind.FLOW, None, FLOW.snapshot(FlowRecord("etl")))
    batch.add(RecordKind.FLOW_RUN, flow_run.id, FLOW_RUN.snapshot(flow_run))
    batch.add(RecordKind.HEARTBEAT, flow_run.id, T0)
    (body,) = wire.request_bodies(batch, {})
    # The server's own model of the body accepts it.
    decoded = TypeAdapter(ServerIngestBatch).validate_json(body.data)
    assert [s.name for s in decoded.states] == ["Pending", "Running", "Completed"]
    assert all(s.run_id == run.id for s in decoded.states)
    assert decoded.task_runs == [run]
    assert decoded.flow_runs == [flow_run]
    assert decoded.heartbeats[0].at == T0
    assert decoded.resent is False
    assert body.delivered == {RecordKind.FLOW: 1, RecordKind.STATE: 3}
    assert json.loads(body.data)["task_runs"][0]["state_type"] == "COMPLETED"


def test_delivered_appended_records_are_skipped_but_rows_resent() -> None:
    batch, run = task_batch()
    (body,) = wire.request_bodies(batch, {RecordKind.STATE: 2}, resent=True)
    sent = json.loads(body.data)
    assert [s["name"] for s in sent["states"]] == ["Completed"]
    assert [r["id"] for r in sent["task_runs"]] == [run.id]
    assert sent["resent"] is True and body.resent
    assert body.delivered == {RecordKind.STATE: 1}
    (body,) = wire.request_bodies(batch, {RecordKind.STATE: 3})
    sent = json.loads(body.data)
    assert sent["states"] == [] and len(sent["task_runs"]) == 1  # the row alone, again


def test_large_batches_are_split_under_the_server_limits() -> None:
    batch = WriteBatch()
    line = "x" * 4096
    count = 6000  # about 25 MB of log lines
    for i in range(count):
        batch.add(
            RecordKind.LOG, None, LOG.snapshot(LogRecord(None, None, 20, "big", f"{i}{line}", T0))
        )
    bodies = list(wire.request_bodies(batch, {}))
    assert len(bodies) > 1
    assert all(len(body.data) <= wire.MAX_BODY_BYTES for body in bodies)
    assert sum(body.delivered[RecordKind.LOG] for body in bodies) == count
    messages = [log["message"] for body in bodies for log in json.loads(body.data)["logs"]]
    assert [int(m[: -len(line)]) for m in messages] == list(range(count))


def test_text_that_is_not_unicode_is_replaced_not_fatal() -> None:
    batch = WriteBatch()
    line = LogRecord(None, None, 20, "app", "bad \ud800 byte", T0)
    batch.add(RecordKind.LOG, None, LOG.snapshot(line))
    (body,) = wire.request_bodies(batch, {})
    message = json.loads(body.data)["logs"][0]["message"]
    assert message.startswith("bad ") and message.endswith(" byte") and "\ufffd" in message


def test_halves_keep_every_record_in_order() -> None:
    batch, _run = task_batch()
    (body,) = wire.request_bodies(batch, {})
    first, second = body.halves()
    assert [*first.parts, *second.parts] == list(body.parts)
    assert first.delivered.get(RecordKind.STATE, 0) + second.delivered[RecordKind.STATE] == 3
