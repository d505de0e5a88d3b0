"""Who a stored result belongs to: the identity its signature binds it to.

The names are also how an error names the record (``the result of task
square:3 of flow run 0192...``), so they are phrases, not codes.

- A task's result: its position (``task_key``) in its flow run. A replay or a
  flow retry reuses the position, so the result stays valid for them; any
  other row is another owner. A task called outside a flow: its task run.
- A flow's result, and its stored parameters: the flow run.
- A result kept as a file: its storage key (the file itself is signed for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.schemas import TaskRunRecord


def task_result_owner(flow_run_id: str | None, task_key: str, task_run_id: str) -> str:
    """The owner of a task run's result."""
    if flow_run_id is None:
        return f"the result of task run {task_run_id}"
    return f"the result of task {task_key} of flow run {flow_run_id}"


def owner_of_task_run(record: TaskRunRecord) -> str:
    """The owner of ``record``'s result."""
    return task_result_owner(record.flow_run_id, record.task_key, record.id)


def flow_result_owner(flow_run_id: str) -> str:
    """The owner of a flow run's result."""
    return f"the result of flow run {flow_run_id}"


def parameters_owner(flow_run_id: str) -> str:
    """The owner of a flow run's stored parameters."""
    return f"the parameters of flow run {flow_run_id}"


def file_owner(storage_key: str) -> str:
    """The owner of a result file's content."""
    return f"the result file with storage key {storage_key!r}"
