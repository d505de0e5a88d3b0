"""What is particular to a subflow run: its place among its parent's task calls.

A flow called inside another flow run holds a position in the parent, like a
task call (``name:call_index``), with a task run standing for it there. A
replay of the parent answers the call from that task run's stored result; a
resumed parent resumes the child run recorded at the position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.results.owners import flow_result_owner, owner_of_task_run
from sluice.results.store import result_store_for
from sluice.schemas import FlowRunFilter, StateRecord
from sluice.states import NOT_LOADED, RESUMABLE_TYPES, Completed, State

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.context import FlowRunContext
    from sluice.schemas import FlowRunRecord, TaskRunRecord
    from sluice.settings import Settings


def replay_from_parent(
    backend: Backend, parent: FlowRunContext, flow_name: str, entry: TaskRunRecord
) -> State:
    """Answer a subflow call from the parent's journal ``entry``: Completed
    ``Replayed``, its result loaded on demand; no child run starts."""
    state = Completed(
        name="Replayed",
        data=NOT_LOADED,
        result_ref=entry.result,
        result_owner=owner_of_task_run(entry),
    )
    state.run_id = entry.id
    entry.state_name = state.name
    entry.updated = state.timestamp
    backend.write_task_run(entry, StateRecord.from_state(entry.id, "task", state))
    parent.logger.info(
        "Subflow %r at position %s replayed from the journal", flow_name, entry.task_key
    )
    return state


def result_for_parent(
    settings: Settings, record: FlowRunRecord, parent_task: TaskRunRecord
) -> str | None:
    """The subflow run's result signed for the parent's task run standing for it (a
    replay of the parent reads it from there)."""
    if record.result is None:
        return None
    store = result_store_for(settings.home, settings.results.inline_threshold)
    return store.rebind(record.result, flow_result_owner(record.id), owner_of_task_run(parent_task))


def resumable_children(backend: Backend, run_id: str) -> dict[str, FlowRunRecord]:
    """The Failed/Crashed/Cancelled subflow runs of run ``run_id``, by their position
    in it (the newest run at each position)."""
    children = backend.list_flow_runs(FlowRunFilter(parent_flow_run_id=run_id, limit=100_000))
    if not children:
        return {}
    placeholders = {t.id: t for t in backend.read_task_runs(run_id)}
    found: dict[str, FlowRunRecord] = {}
    for child in reversed(children):  # oldest first: the newest attempt wins
        holder = placeholders.get(child.parent_task_run_id or "")
        if holder is not None and child.state_type in RESUMABLE_TYPES:
            found[holder.task_key] = child
    return found
