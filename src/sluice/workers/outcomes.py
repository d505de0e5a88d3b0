"""What a worker records when a flow run's subprocess has ended.

The subprocess records its own final state. If it ended while the embedded
store's database was away, that state may be in a spool file still: the
worker writes such files back before it looks. When the process recorded no
final state (killed, crashed before Running, stopped for a cancellation or
a shutdown), the worker decides from what it asked for and what the store
holds:

- asked to cancel (or the run is Cancelling): Cancelled;
- handing runs back at shutdown: a run that never started goes back to
  Scheduled (released); one that started is recorded Crashed and queued to
  resume from its journal (AwaitingResume), for another worker;
- superseded (exit 3: another process took the run over): nothing, the run
  is that process's;
- not started because the store was unreachable (exit 4): back to the queue
  (Scheduled), like a run handed back before it started;
- ended, its last records still being delivered (exit 5): nothing yet (the
  records carry the run's final state);
- otherwise: Crashed, with the exit status in the message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sluice.errors import SluiceError
from sluice.schemas import StateRecord
from sluice.states import TERMINAL_TYPES, State, StateType
from sluice.workers.payload import EXIT_NOT_STARTED, EXIT_RECORDS_PENDING, EXIT_SUPERSEDED
from sluice.workers.process import FlowRunProcess, describe_exit

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import FlowRunRecord

logger = logging.getLogger("sluice.worker")

HANDED_BACK_MESSAGE = "Handed back by its worker at shutdown; resumes from its journal"


def settle(backend: Backend, process: FlowRunProcess, code: int, worker_name: str) -> str:
    """Record the outcome of ``process`` (ended with ``code``); a word for the log.

    Raises:
        StoreError: the store cannot be read or written now (nothing was
            decided: settle again later).
    """
    record = _read_with_kept_records(backend, process.run_id)
    final = record.state_type in TERMINAL_TYPES
    if process.cancelling or record.state_type is StateType.CANCELLING:
        if record.state_type is not StateType.CANCELLED:
            _write(backend, record, State(StateType.CANCELLED, "Cancelled", _cancel_message(code)))
        return "cancelled"
    if process.handing_back:
        return _hand_back(backend, record, code, worker_name)
    if final:
        return record.state_name.lower()
    verdict = _by_exit_status(backend, record, code, worker_name)
    if verdict is not None:
        return verdict
    if record.state_type is StateType.SCHEDULED:
        # Queued again (a resume) after it finished and before we looked: the
        # process's part is over and the run belongs to whoever claims it next.
        return "requeued"
    message = f"The flow run's process ended ({describe_exit(code)}) without a final state"
    _write(backend, record, State(StateType.CRASHED, "Crashed", message))
    return "crashed"


def _read_with_kept_records(backend: Backend, run_id: str) -> FlowRunRecord:
    """The run as stored, once the records its process kept aside are written.

    A process that ended while the embedded store's database was away keeps
    its last records (its final state among them) in a spool file that the
    next process opening the store writes back. The worker writes them back
    itself before deciding anything: the run's own final state then wins, and
    a run whose work finished is not called Crashed.
    """
    record: FlowRunRecord = backend.read_flow_run(run_id)
    if record.state_type in TERMINAL_TYPES:
        return record
    try:
        backend.replay_spools()
    except OSError as exc:  # the spool folder cannot be read: decide from the store
        logger.warning("Cannot write back the records kept in spool files: %s", exc)
    again: FlowRunRecord = backend.read_flow_run(run_id)
    return again


def _by_exit_status(
    backend: Backend, record: FlowRunRecord, code: int, worker_name: str
) -> str | None:
    """The outcome an exit status decides on its own (see the module docstring)."""
    if code == EXIT_SUPERSEDED:
        return "superseded"
    if code == EXIT_NOT_STARTED and record.state_type is StateType.PENDING:
        backend.release_flow_runs([record.id], worker_name=worker_name)
        return "released"
    if code == EXIT_RECORDS_PENDING:
        logger.warning(
            "Flow run %s ended but its last records were not yet written: they carry its "
            "final state", record.id,
        )  # fmt: skip
        return "records pending"
    return None


def _hand_back(backend: Backend, record: FlowRunRecord, code: int, worker_name: str) -> str:
    if record.state_type is StateType.PENDING:
        backend.release_flow_runs([record.id], worker_name=worker_name)
        return "released"
    if record.state_type not in TERMINAL_TYPES:
        message = f"Stopped by its worker's shutdown ({describe_exit(code)})"
        _write(backend, record, State(StateType.CRASHED, "Crashed", message))
    elif record.state_type is not StateType.CRASHED:
        # It finished on its own during the grace period.
        return record.state_name.lower()
    try:
        backend.resume_flow_run(record.id)
    except SluiceError as exc:
        logger.warning("Cannot queue flow run %s to resume: %s", record.id, exc)
        return record.state_name.lower()
    return "handed back"


def _cancel_message(code: int) -> str:
    return f"Cancelled by request; the worker stopped its process ({describe_exit(code)})"


def _write(backend: Backend, record: FlowRunRecord, state: State) -> None:
    state.run_id = record.id
    record.apply(state)
    backend.write_flow_run(record, StateRecord.from_state(record.id, "flow", state))
    backend.flush()


def fail_unlaunched(backend: Backend, record: FlowRunRecord, message: str) -> None:
    """Record Failed for a claimed run the worker could not start."""
    _write(backend, record, State(StateType.FAILED, "Failed", message))
