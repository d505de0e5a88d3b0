"""Execute one existing flow run, as that run: ``python -m sluice.workers.execute ID``.

This is what a worker's subprocess runs (``sluice flow-run execute ID`` does
the same by hand). It loads the deployment's entrypoint from its working
directory, takes the run's stored parameters and runs the flow *as* the
existing run (same id): Pending -> Running -> a final state. A run that ran
before (``run_count > 0``: queued again to resume) replays its journal, so
its completed tasks are not computed twice; one resumed with a ``from_task``
(see :mod:`sluice.resume_from`) replays only the calls before it.

A run whose code cannot be found or imported ends Failed with the reason as
its state message: never left Pending.

Under a worker (``SLUICE_WORKER_CONTROL=stdin``) the first stdin line carries
the claimed run (see :mod:`sluice.workers.payload`), and a ``cancel`` line
written before a SIGTERM makes that SIGTERM a cancellation (the run ends
Cancelled) rather than an interruption (Crashed).

Exit status: 0 Completed, 1 any other final state, 2 the run cannot be
executed (not found, not Scheduled/Pending), 3 superseded (another process
took the run over: nothing more was recorded), 4 not started because the
store could not be reached (the run is for the queue again), 5 the run ended
but its last records are not in the store yet (the embedded store kept them
in a spool file while its database was away, or client mode could not
deliver them in time), 143 interrupted by SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from sluice.backend.factory import close_backends
from sluice.engine.existing_run import load_run_flow, open_store, run_existing_flow_run
from sluice.engine.signals import TerminationRequested
from sluice.errors import (
    CancelRun,
    CannotExecute,
    CodeUnavailable,
    RunNotStarted,
    SluiceError,
    StoreError,
    Superseded,
)
from sluice.job_variables import process_working_dir
from sluice.logging.loggers import flow_run_logger
from sluice.schemas import StateRecord
from sluice.states import State, StateType
from sluice.workers.payload import (
    CANCEL_LINE,
    CONTROL_ENV,
    EXIT_CANNOT_RUN,
    EXIT_COMPLETED,
    EXIT_NOT_COMPLETED,
    EXIT_NOT_STARTED,
    EXIT_RECORDS_PENDING,
    EXIT_SUPERSEDED,
    RunPayload,
    decode_payload,
)

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import FlowRunRecord
    from sluice.settings import Settings

#: states a run can be executed from
EXECUTABLE = (StateType.SCHEDULED, StateType.PENDING)


def execute_flow_run(flow_run_id: str, payload: RunPayload | None = None) -> int:
    """Run the flow run ``flow_run_id`` to a final state in this process; the exit status.

    Args:
        payload: the run and its deployment's entrypoint as a worker claimed
            it; default: read from the store.

    Raises:
        CannotExecute: unknown run, or one not Scheduled/Pending.
        RunNotStarted: the store failed before the run started (nothing of it ran).
    """
    try:
        settings, backend = open_store()
        if payload is None:
            record, entrypoint, working_dir = _read_run(backend, flow_run_id)
        else:
            record, entrypoint, working_dir = payload.run, payload.entrypoint, payload.working_dir
    except StoreError as exc:
        raise RunNotStarted(str(exc)) from exc
    code = _execute(backend, settings, record, entrypoint, working_dir, claimed=payload is not None)
    if backend.kept_aside:
        # The database was away when the run ended: its last records (its final
        # state among them) are in this process's spool file, not in the
        # database. The worker settling the run writes them back first.
        return EXIT_RECORDS_PENDING
    return code


def _execute(
    backend: Backend,
    settings: Settings,
    record: FlowRunRecord,
    entrypoint: str | None,
    working_dir: str | None,
    *,
    claimed: bool,
) -> int:
    """Load the run's flow and run it (or end it without running); the exit status."""
    record.hostname = socket.gethostname()
    record.pid = os.getpid()
    try:
        flow = load_run_flow(entrypoint, working_dir, record.id)
    except CodeUnavailable as exc:
        end_without_running(backend, record, StateType.FAILED, "Failed", str(exc))
        return EXIT_NOT_COMPLETED
    except CancelRun:
        end_without_running(backend, record, StateType.CANCELLED, "Cancelled", "Cancelled")
        return EXIT_NOT_COMPLETED
    try:
        if claimed and _cancelled_since_claim(backend, record):
            return EXIT_NOT_COMPLETED
    except StoreError as exc:
        raise RunNotStarted(str(exc)) from exc
    # A run queued again to resume replays its journal, up to the task asked for.
    state = run_existing_flow_run(flow, record, backend, settings)
    return EXIT_COMPLETED if state.type is StateType.COMPLETED else EXIT_NOT_COMPLETED


def _cancelled_since_claim(backend: Backend, record: FlowRunRecord) -> bool:
    """True (and the run ended Cancelled) if it was cancelled after the worker claimed it.

    A run cancelled while Pending is Cancelled at once (nothing runs it yet),
    and the engine's first write, Running, would overwrite that: the flow
    would run to the end against the user's wish. Checked after the code is
    loaded, which is most of the time between claim and start (the engine
    then stores Running at once); a cancel in the few milliseconds between
    is still overwritten.
    """
    current = backend.read_flow_run(record.id)
    if current.state_type is StateType.CANCELLING:
        message = "Cancelled before it started"
        end_without_running(backend, current, StateType.CANCELLED, "Cancelled", message)
        return True
    if current.state_type is StateType.CANCELLED:
        flow_run_logger(backend, current).warning("Cancelled before it started: not run")
        backend.flush()
        return True
    return False


def _read_run(backend: Backend, run_id: str) -> tuple[FlowRunRecord, str | None, str | None]:
    record = backend.read_flow_run(run_id)
    if record.state_type not in EXECUTABLE:
        raise CannotExecute(
            f"flow run {record.id} is {record.state_name}; only a Scheduled or Pending run "
            "can be executed (resume a finished one with sluice flow-run resume)"
        )
    if record.deployment_id is None:
        return record, record.entrypoint, None
    dep = backend.read_deployment(record.deployment_id)
    return record, dep.entrypoint, process_working_dir(dep.working_dir, record.job_variables)


def end_without_running(
    backend: Backend, record: FlowRunRecord, type_: StateType, name: str, message: str
) -> None:
    """Record a final state for a run whose flow never started, with a log line saying why."""
    state = State(type_, name, message=message)
    state.run_id = record.id
    record.apply(state)
    backend.write_flow_run(record, StateRecord.from_state(record.id, "flow", state))
    flow_run_logger(backend, record).error("%s", message)
    backend.flush()


# -- the process ------------------------------------------------------------------------
def _install_sigterm(controlled: bool) -> None:
    """SIGTERM ends the run: Cancelled when the worker said ``cancel`` first, else Crashed.

    Installed before the engine runs, so the engine's own SIGTERM handling
    (which records Crashed) defers to this one.
    """

    def on_term(signum: int, frame: object) -> None:
        if controlled and _cancel_requested():
            raise CancelRun("Cancelled by request: the worker stopped the flow run's process")
        raise TerminationRequested(signum)

    signal.signal(signal.SIGTERM, on_term)


def _cancel_requested() -> bool:
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 4096)
    except (BlockingIOError, OSError):
        return False
    return CANCEL_LINE.strip() in data


def _read_payload() -> RunPayload | None:
    line = sys.stdin.buffer.readline()
    return decode_payload(line) if line.strip() else None


def warm_up() -> None:
    """Import what running a flow needs and open the store, before any run is known.

    A worker keeps one such process waiting (``--warm``) and hands it the
    next claimed run on stdin, so a run's pickup does not wait for an
    interpreter to start and import Sluice (the engine loads with this module).
    A store that cannot be opened now is no reason to exit: the worker may
    hand this process a run at any time.
    """
    try:
        _settings, backend = open_store()
    except StoreError:
        # The store is away (or not there yet): this process still waits for its
        # run, and opening the store is tried again then (a run it cannot open
        # the store for goes back to the queue: exit status 4).
        return
    # The run is read once before it starts (cancelled since its claim?): what
    # that read loads (SQLAlchemy, embedded) loads now rather than then.
    backend.prepare_reads()


def main(argv: list[str] | None = None) -> int:
    """``python -m sluice.workers.execute FLOW_RUN_ID`` (or ``--warm``: wait for the run
    on stdin); the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sluice.workers.execute FLOW_RUN_ID|--warm", file=sys.stderr)
        return EXIT_CANNOT_RUN
    controlled = os.environ.get(CONTROL_ENV) == "stdin"
    warm = args[0] == "--warm"
    _install_sigterm(controlled)
    try:
        if warm:
            warm_up()
        payload = _read_payload() if controlled or warm else None
        if warm and payload is None:
            return EXIT_COMPLETED  # the worker closed our stdin: not needed after all
        return execute_flow_run(payload.run.id if payload else args[0], payload)
    except Superseded as exc:
        print(f"Stopped: {exc}", file=sys.stderr)
        return EXIT_SUPERSEDED
    except RunNotStarted as exc:
        print(f"Not started (the store is unreachable): {exc}", file=sys.stderr)
        return EXIT_NOT_STARTED
    except StoreError as exc:
        # The run went on to its end (or was stopped) but its last records could
        # not be written in time: the exit handler keeps trying to deliver them.
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_RECORDS_PENDING
    except SluiceError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN


def _exit(code: int) -> None:
    """Flush what the run recorded, then leave without waiting for stray threads
    (a cancelled run's task threads may still be sleeping)."""
    try:
        close_backends()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    _exit(main())
