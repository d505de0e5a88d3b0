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


@dataclass
class HeartbeatWrite:
    """A sign of life of the process running a flow run (heartbeats never move back)."""

    flow_run_id: str
    at: _dt.datetime


@dataclass
class AttemptFence:
    """The attempt of a flow run the sender of a batch holds: if a later attempt took the
    run over, the store refuses the batch's records of that run (and says so)."""

    flow_run_id: str
    attempt: int


@dataclass
class IngestBatch:
    """Everything a client's batcher collected since its last send.

    Each run appears once, as its latest copy (an upsert); ``states`` is state
    history to append, each naming its run by ``run_id`` (the run itself may
    have been sent in an earlier batch). ``resent`` marks a batch the client
    sends again because it never saw the answer to an earlier attempt: the
    server then skips the states and logs it already holds (see docs/api.md).
    ``fences`` are the attempts the sender holds (see :class:`AttemptFence`).
    """

    flows: list[FlowRecord] = field(default_factory=list)
    flow_runs: list[FlowRunRecord] = field(default_factory=list)
    task_runs: list[TaskRunRecord] = field(default_factory=list)
    states: list[StateRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    heartbeats: list[HeartbeatWrite] = field(default_factory=list)
    resent: bool = False
    fences: list[AttemptFence] = field(default_factory=list)

    def record_count(self) -> int:
        """How many records the batch holds."""
        return (
            len(self.flows)
            + len(self.flow_runs)
            + len(self.task_runs)
            + len(self.states)
            + len(self.logs)
            + len(self.heartbeats)
        )


@dataclass
class Accepted:
    """The answer to an ingest: how many records it held, and the fenced runs a later
    attempt took over (their records were refused; the sender must stop running them)."""

    accepted: int
    superseded: list[str] = field(default_factory=list)


@dataclass
class Count:
    """How many records a request matched."""

    count: int


@dataclass
class CreatedCount:
    """How many runs a request created (ticks that had a run already are not counted)."""

    created: int


@dataclass
class Health:
    status: str
    version: str


@dataclass
class AttemptAnswer:
    """A flow run's attempt: the one taken (claim) or the one stored (read)."""

    attempt: int


@dataclass
class MarkedIds:
    """The ids of the records a request changed."""

    ids: list[str]
