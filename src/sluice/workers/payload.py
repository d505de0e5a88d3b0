"""What a worker and its flow-run subprocess exchange: the claimed run, as one JSON
line on stdin, and the subprocess's exit status.

The subprocess could read the run and its deployment from the store itself,
but on the embedded store a read loads SQLAlchemy (about 0.2 s of every
start); the worker already holds both, so it passes them on stdin. Plain
JSON through ``dataclasses.fields``: no pydantic in the subprocess either.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any

from sluice.schemas import FlowRunRecord
from sluice.states import StateType

#: stdin line that asks the subprocess to treat the next SIGTERM as a cancellation
CANCEL_LINE = b"cancel\n"
#: environment variable telling ``sluice.workers.execute`` a worker controls it via stdin
CONTROL_ENV = "SLUICE_WORKER_CONTROL"

#: exit statuses of ``python -m sluice.workers.execute`` (its docstring says what each means)
EXIT_COMPLETED, EXIT_NOT_COMPLETED, EXIT_CANNOT_RUN = 0, 1, 2
EXIT_SUPERSEDED, EXIT_NOT_STARTED, EXIT_RECORDS_PENDING = 3, 4, 5

_TIME_FIELDS = frozenset(
    f.name
    for f in dataclasses.fields(FlowRunRecord)
    if "datetime" in str(f.type) or f.name in ("created", "updated")
)


@dataclass(slots=True)
class RunPayload:
    """A claimed run with where its code lives."""

    run: FlowRunRecord
    entrypoint: str | None
    working_dir: str | None


def encode_payload(payload: RunPayload) -> bytes:
    """One JSON line."""
    run: dict[str, Any] = {}
    for f in dataclasses.fields(FlowRunRecord):
        value = getattr(payload.run, f.name)
        if isinstance(value, _dt.datetime):
            value = value.isoformat()
        elif isinstance(value, StateType):
            value = value.value
        run[f.name] = value
    body = {"run": run, "entrypoint": payload.entrypoint, "working_dir": payload.working_dir}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode_payload(line: bytes) -> RunPayload:
    """The payload :func:`encode_payload` made.

    Raises:
        ValueError: not such a line.
    """
    body = json.loads(line)
    fields = dict(body["run"])
    for name in _TIME_FIELDS:
        if fields.get(name) is not None:
            fields[name] = _dt.datetime.fromisoformat(fields[name])
    fields["state_type"] = StateType(fields["state_type"])
    return RunPayload(FlowRunRecord(**fields), body.get("entrypoint"), body.get("working_dir"))
