"""Request and response bodies of the REST API that are not records of :mod:`sluice.schemas`.

One definition for both ends: the server validates requests with them and the
HTTP backend builds requests from them. Plain dataclasses, like the records
they carry, so one ``pydantic.TypeAdapter`` (or FastAPI, which builds one)
validates and serializes both, and importing this module costs nothing. See
docs/api.md.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.states import StateType


@dataclass
class FlowRunWrite:
    """A flow run row to upsert, and the state to append to its history (if any)."""

    run: FlowRunRecord
    state: StateRecord | None = None


@dataclass
class TaskRunWrite:
    """A task run row to upsert, and the state to append to its history (if any)."""

    run: TaskRunRecord
    state: StateRecord | None = None


@dataclass
class HeartbeatWrite:
    """A sign of life of the process running a flow run (heartbeats never move back)."""

    flow_run_id: str
    at: _dt.datetime


@dataclass
class IngestBatch:
    """Everything a client's batcher collected since its last send."""

    flows: list[FlowRecord] = field(default_factory=list)
    flow_runs: list[FlowRunWrite] = field(default_factory=list)
    task_runs: list[TaskRunWrite] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    heartbeats: list[HeartbeatWrite] = field(default_factory=list)

    def record_count(self) -> int:
        """How many records the batch holds (a run with its state counts once)."""
        return (
            len(self.flows)
            + len(self.flow_runs)
            + len(self.task_runs)
            + len(self.logs)
            + len(self.heartbeats)
        )


@dataclass
class Accepted:
    """The answer to an ingest: how many records were made durable."""

    accepted: int


@dataclass
class Count:
    count: int


@dataclass
class Health:
    status: str
    version: str


@dataclass
class SetStateRequest:
    """A state a person or tool asks a flow run to take (the orchestration rules decide)."""

    type: StateType
    name: str | None = None
    message: str | None = None


@dataclass
class MarkLapsedRequest:
    heartbeat_before: _dt.datetime
    now: _dt.datetime


@dataclass
class MarkedIds:
    ids: list[str]
