"""A task call answered from the journal instead of executed (durable resume)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sluice.engine.final_state import returned_by_user
from sluice.results.owners import owner_of_task_run
from sluice.schemas import StateRecord
from sluice.states import NOT_LOADED, Completed
from sluice.utilities.describe import state_label

if TYPE_CHECKING:
    from sluice.engine.task_call import TaskCall


def replay(call: TaskCall) -> TaskCall:
    """Mark ``call`` (built on the journal's record of its earlier run) as replayed.

    The run is recorded Replayed, keeping the times of the attempt that
    computed it. A run that ended in a state its code returned
    (``Completed(name="SKIPPED", message=...)``) replays as that state, name
    and message kept, and a direct call gives that state back as the first
    run did.
    """
    record = call.record
    if returned_by_user(record.state_name, record.state_message):
        state = Completed(
            name=record.state_name,
            message=record.state_message,
            data=NOT_LOADED,
            result_ref=record.result,
            result_owner=owner_of_task_run(record),
        )
        call.returned_state = state
        details = {"replayed": True}
    else:
        state = Completed(
            name="Replayed",
            data=NOT_LOADED,
            result_ref=record.result,
            result_owner=owner_of_task_run(record),
        )
        details = None
    state.run_id = record.id
    record.state_name = state.name
    record.updated = state.timestamp
    call.sink.write_task_run(record, StateRecord.from_state(record.id, "task", state, details))
    # The state is in the history; the line is for the console only.
    call.line(
        logging.INFO,
        f"Finished in state {state_label(state)} (result from the journal)",
        at=state.timestamp,
        store=False,
    )
    call.replayed = state
    return call
