"""Queueing a finished run of a deployment to resume (Scheduled ``AwaitingResume``).

A worker claims it like any due run and reruns it, replaying its journal;
with ``from_task`` (kept in the AwaitingResume state's details, see
:mod:`sluice.resume_from`) only the calls before that task replay.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from sluice.errors import ConflictError
from sluice.resume_from import FROM_TASK_DETAIL, parse_from_task, refused_from_task
from sluice.schemas import AWAITING_RESUME_STATE, FlowRunRecord
from sluice.states import RESUMABLE_TYPES, StateType
from sluice.store import queries
from sluice.store.deployment_writes import set_run_state
from sluice.store.schema import task_run


def queue_resume(conn: Connection, run_id: str, from_task: str | None, now: float) -> FlowRunRecord:
    """Move a Failed/Crashed/Cancelled run of a deployment to AwaitingResume; the run after.

    Raises:
        NotFoundError: unknown run.
        ConflictError: a run without a deployment, or one not Failed/Crashed/Cancelled.
        InvalidInputError: (a ValueError) a malformed ``from_task``, or a task the run
            never ran.
    """
    key = parse_from_task(from_task) if from_task is not None else None
    run = queries.get_flow_run(conn, run_id)
    if run.deployment_id is None:
        raise ConflictError(
            "flow run",
            run.id,
            "it was not created from a deployment, so no worker can run it; "
            f"resume it where its code is with `sluice flow-run resume {run.id}`",
        )
    if run.state_type not in RESUMABLE_TYPES:
        raise ConflictError(
            "flow run",
            run.id,
            f"it is {run.state_name}; only Failed, Crashed or Cancelled runs resume",
        )
    message = f"Resume requested (was {run.state_name})"
    details = None
    if key is not None:
        _check_task_ran(conn, run.id, *key)
        message = f"Resume requested from task {from_task!r} (was {run.state_name})"
        details = {FROM_TASK_DETAIL: from_task}
    set_run_state(
        conn,
        run.id,
        StateType.SCHEDULED,
        AWAITING_RESUME_STATE,
        message,
        now,
        details=details,
        end_time=None,
    )
    return queries.get_flow_run(conn, run.id)


def _check_task_ran(conn: Connection, run_id: str, name: str, index: int | None) -> None:
    """Raise InvalidInputError unless the run has a task run of ``name`` (call ``index``)."""
    of_task = select(task_run.c.call_index).where(
        task_run.c.flow_run_id == run_id, task_run.c.task_name == name
    )
    if conn.execute(of_task.limit(1)).first() is None:
        raise refused_from_task(f"flow run {run_id} never ran a task named {name!r}")
    if index is None:
        return
    if conn.execute(of_task.where(task_run.c.call_index == index).limit(1)).first() is None:
        raise refused_from_task(f"flow run {run_id} never made call {index} of task {name!r}")
