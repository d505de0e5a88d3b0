"""The worker loop: claim due runs, run each in a subprocess, watch them, shut down cleanly.

One thread does everything, in short steps between sleeps of
``poll_interval``: claim (an atomic store transaction, so several workers
never take the same run), launch, reap ended subprocesses (recording
Crashed/Cancelled when they did not record a final state), look for
cancellation requests of its runs, heartbeat itself and its runs, and on the
embedded store also run the scheduler pass, so cron deployments fire with
no server.

Stopping (:meth:`Worker.request_stop`, e.g. on SIGTERM): no more claims;
running subprocesses get ``shutdown_grace`` seconds to finish; then each is
sent SIGTERM and its run handed back (see :mod:`sluice.workers.outcomes`).
A second stop request skips the grace period.

While the store is away (a database outage, a server restarting) the worker
keeps going: failed claims, heartbeats and scheduler passes are tried again
on later steps; a run whose end cannot be recorded yet is settled once the
store answers (after writing back what its process kept in a spool file);
a claimed run whose deployment cannot be read is started once it can. At
shutdown it waits for the store at most ``store.retry_timeout`` (or until a
second stop request), then leaves what it could not record to crash detection.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.backend.availability import store_unavailable
from sluice.backend.factory import get_backend
from sluice.deployments.scheduler import schedule_due_runs
from sluice.errors import NotFoundError, SluiceError
from sluice.job_variables import ignored_by_process_pools, process_working_dir
from sluice.schemas import WorkPoolRecord
from sluice.settings import load_settings
from sluice.states import StateType, utcnow
from sluice.workers.outcomes import fail_unlaunched, settle
from sluice.workers.payload import RunPayload
from sluice.workers.process import (
    FlowRunProcess,
    describe_exit,
    launch,
    retire_spare,
    spawn_spare,
)

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import DeploymentRecord, FlowRunRecord
    from sluice.settings import Settings

logger = logging.getLogger("sluice.worker")

#: runs claimed per poll when the worker has no concurrency limit
UNLIMITED_BATCH = 16
#: seconds a cached deployment (entrypoint, working dir) is trusted
DEPLOYMENT_CACHE_SECONDS = 5.0


@dataclass
class WorkerOptions:
    """How a worker behaves.

    Attributes:
        pool: the work pool to claim from (None: only ``deployment_ids``, for ``serve``).
        name: the worker's name (default ``HOST-PID``).
        queues: only these queues of the pool (default: all).
        limit: at most this many flow runs at once (None: no limit of its own).
        poll_interval: seconds between two claims.
        heartbeat_interval: seconds between two worker heartbeats.
        cancel_check_interval: seconds between two looks for cancelled runs.
        shutdown_grace: seconds running runs get to finish once stopping.
        kill_grace: seconds between SIGTERM and SIGKILL of a run's process.
        run_once: claim once, run what was claimed, then stop.
        schedule: run the scheduler pass (default: on the embedded store only).
        deployment_ids: only runs of these deployments (``serve``).
    """

    pool: str | None
    name: str = ""
    queues: Sequence[str] | None = None
    limit: int | None = None
    poll_interval: float = 0.2
    heartbeat_interval: float = 10.0
    cancel_check_interval: float = 0.5
    shutdown_grace: float = 30.0
    kill_grace: float = 10.0
    run_once: bool = False
    schedule: bool | None = None
    deployment_ids: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{socket.gethostname()}-{os.getpid()}"
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"the worker's concurrency limit must be at least 1, not {self.limit}")
        if self.poll_interval <= 0:
            raise ValueError(f"the poll interval must be positive, not {self.poll_interval}")


@dataclass
class WorkerReport:
    """What a worker did, by outcome (``completed``, ``failed``, ``crashed``, ...)."""

    launched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker:
    """A worker of a pool (see the module docstring); :meth:`run` blocks until stopped."""

    def __init__(
        self,
        options: WorkerOptions,
        settings: Settings | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.options = options
        self.settings = settings or load_settings()
        if backend is None:
            backend = get_backend(self.settings)
        self.backend = backend
        self.children: dict[str, FlowRunProcess] = {}
        self.report = WorkerReport()
        self._stop = threading.Event()
        self._stops_requested = 0
        self._deployments: dict[str, tuple[float, DeploymentRecord]] = {}
        self._schedule = options.schedule
        if self._schedule is None:
            self._schedule = not self.settings.api_url
        self._next = {"beat": 0.0, "cancel": 0.0, "runs_beat": 0.0, "schedule": 0.0}
        #: a warmed-up process waiting for the next claimed run (see execute.warm_up)
        self._spare: subprocess.Popen[bytes] | None = None
        #: runs claimed but not launched yet because the store went away meanwhile
        self._unlaunched: dict[str, FlowRunRecord] = {}

    # -- control ------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop claiming and shut down; a second request skips the grace period.
        Safe from a signal handler."""
        self._stops_requested += 1
        self._stop.set()

    def run(self) -> WorkerReport:
        """Work until stopped (or, with ``run_once``, until the first claim's runs end)."""
        self._worker_beat("ONLINE")
        logger.info("Worker %r started on %s", self.options.name, self._source_text())
        try:
            claimed_once = False
            while not self._stop.is_set():
                now = time.monotonic()
                self._step(now, claim=not (self.options.run_once and claimed_once))
                claimed_once = True
                if self.options.run_once and not self.children and not self._unlaunched:
                    break
                self._stop.wait(self.options.poll_interval)
        finally:
            self._shutdown()
        return self.report

    def _source_text(self) -> str:
        if self.options.pool is not None:
            return f"work pool {self.options.pool!r}"
        return f"{len(self.options.deployment_ids or ())} deployment(s)"

    # -- one step -----------------------------------------------------------------
    def _step(self, now: float, *, claim: bool) -> None:
        if self._schedule and now >= self._next["schedule"]:
            self._next["schedule"] = now + self.settings.scheduler.interval
            self._run_scheduler()
        self._reap()
        if now >= self._next["beat"]:
            self._next["beat"] = now + self.options.heartbeat_interval
            self._worker_beat("ONLINE")
        if self.children and now >= self._next["cancel"]:
            self._next["cancel"] = now + self.options.cancel_check_interval
            self._check_cancellations()
        if self.children and now >= self._next["runs_beat"]:
            self._next["runs_beat"] = now + self.settings.heartbeat_interval
            self._beat_runs()
        for record in list(self._unlaunched.values()):
            self._launch(record)
        if claim:
            self._claim_and_launch()
            self._keep_spare()

    def _run_scheduler(self) -> None:
        s = self.settings.scheduler
        ids = self.options.deployment_ids
        try:
            schedule_due_runs(
                self.backend,
                horizon=_seconds(s.horizon),
                max_runs=s.max_runs,
                grace=_seconds(s.grace),
                deployment_ids=set(ids) if ids is not None else None,
            )
        except SluiceError as exc:
            logger.warning("Scheduler pass failed: %s", exc)

    def _free_slots(self) -> int:
        if self.options.limit is None:
            return UNLIMITED_BATCH
        return self.options.limit - len(self.children) - len(self._unlaunched)

    def _claim_and_launch(self) -> None:
        free = self._free_slots()
        if free <= 0:
            return
        try:
            runs = self.backend.claim_flow_runs(
                self.options.pool,
                worker_name=self.options.name,
                limit=free,
                queues=self.options.queues,
                deployment_ids=self.options.deployment_ids,
            )
        except NotFoundError:
            raise
        except SluiceError as exc:
            logger.warning("Claiming runs failed (will retry): %s", exc)
            return
        for record in runs:
            self._launch(record)

    def _launch(self, record: FlowRunRecord) -> None:
        try:
            dep = self._deployment(record.deployment_id)
        except SluiceError as exc:
            if store_unavailable(exc):
                # The store went away since the claim: the run is still this
                # worker's to start (it did not fail), once the store answers.
                if record.id not in self._unlaunched:
                    logger.warning(
                        "Flow run %s: cannot read its deployment now (%s); starting it "
                        "once the store answers", record.id, exc,
                    )  # fmt: skip
                self._unlaunched[record.id] = record
                return
            self._unlaunched.pop(record.id, None)
            fail_unlaunched(self.backend, record, f"Cannot start the run: {exc}")
            return
        self._unlaunched.pop(record.id, None)
        variables = record.job_variables
        folder = process_working_dir(dep.working_dir, variables)
        payload = RunPayload(record, dep.entrypoint, folder)
        ignored = ignored_by_process_pools(variables)
        if ignored:
            logger.warning(
                "Flow run %s: job variables %s do not apply to process pools (kept with the run)",
                record.id, ", ".join(ignored),
            )  # fmt: skip
        spare = None
        if not variables.get("env"):  # a spare already has the worker's environment
            spare, self._spare = self._spare, None
        try:
            process = launch(payload, spare)
        except OSError as exc:
            fail_unlaunched(self.backend, record, f"Cannot start the run's process: {exc}")
            return
        self.children[record.id] = process
        self.report.launched += 1
        logger.info(
            "Flow run %s (%s) of %s started in process %d",
            record.id, record.name, dep.full_name, process.pid,
        )  # fmt: skip

    def _keep_spare(self) -> None:
        """One warmed-up process ready while the worker has room for another run."""
        if self.options.run_once or self._free_slots() <= 0:
            return
        if self._spare is not None and self._spare.poll() is None:
            return
        try:
            self._spare = spawn_spare()
        except OSError as exc:
            logger.warning("Cannot start a spare process: %s", exc)
            self._spare = None

    def _deployment(self, deployment_id: str | None) -> DeploymentRecord:
        if deployment_id is None:
            raise NotFoundError("deployment of the run", "(none)")
        now = time.monotonic()
        cached = self._deployments.get(deployment_id)
        if cached is not None and now - cached[0] < DEPLOYMENT_CACHE_SECONDS:
            return cached[1]
        dep: DeploymentRecord = self.backend.read_deployment(deployment_id)
        self._deployments[deployment_id] = (now, dep)
        return dep

    def _reap(self) -> None:
        now = time.monotonic()
        for run_id, process in list(self.children.items()):
            code = process.exit_code()
            if code is None:
                process.kill_if_overdue(now)
                continue
            try:
                outcome = settle(self.backend, process, code, self.options.name)
            except SluiceError as exc:
                # The store is unreachable: look again on the next step (saying so once).
                if process.unsettled_since is None:
                    process.unsettled_since = now
                    logger.warning(
                        "Cannot record yet how flow run %s ended (%s); trying again until "
                        "the store answers: %s", run_id, describe_exit(code), exc,
                    )  # fmt: skip
                continue
            process.close()
            del self.children[run_id]
            self.report.outcomes[outcome] = self.report.outcomes.get(outcome, 0) + 1
            logger.info("Flow run %s ended: %s (%s)", run_id, outcome, describe_exit(code))

    def _check_cancellations(self) -> None:
        for run_id, process in list(self.children.items()):
            if process.stop_deadline is not None:
                continue
            try:
                state = self.backend.read_flow_run(run_id).state_type
            except SluiceError:
                continue
            if state in (StateType.CANCELLING, StateType.CANCELLED):
                logger.info("Flow run %s is cancelled: stopping its process", run_id)
                process.terminate(self.options.kill_grace, cancel=True)

    def _beat_runs(self) -> None:
        at = utcnow()
        for run_id in self.children:
            self.backend.heartbeat(run_id, at)

    def _worker_beat(self, status: str) -> None:
        if self.options.pool is None:
            return
        try:
            self.backend.worker_heartbeat(
                self.options.pool,
                self.options.name,
                status=status,
                hostname=socket.gethostname(),
                pid=os.getpid(),
            )
        except NotFoundError:
            raise
        except SluiceError as exc:
            logger.warning("Worker heartbeat failed: %s", exc)

    # -- shutdown -----------------------------------------------------------------
    def _shutdown(self) -> None:
        if self._spare is not None:
            retire_spare(self._spare)
            self._spare = None
        if self._unlaunched:
            with contextlib.suppress(SluiceError):
                # Otherwise released when this worker reads offline (a stale claim).
                self.backend.release_flow_runs(
                    list(self._unlaunched), worker_name=self.options.name
                )
            self._unlaunched.clear()
        if self.children:
            logger.info(
                "Worker stopping: %d run(s) in progress get %.0f s to finish",
                len(self.children), self.options.shutdown_grace,
            )  # fmt: skip
        deadline = time.monotonic() + self.options.shutdown_grace
        while self.children and time.monotonic() < deadline and self._stops_requested < 2:
            self._step(time.monotonic(), claim=False)
            time.sleep(0.05)
        for process in self.children.values():
            process.handing_back = True
            process.terminate(self.options.kill_grace, cancel=False)
        self._settle_the_rest()
        with contextlib.suppress(SluiceError):
            self._worker_beat("STOPPED")
        self.backend.flush()
        logger.info("Worker %r stopped", self.options.name)

    def _settle_the_rest(self) -> None:
        """Settle the runs whose processes are being stopped. While the store is away,
        wait for it at most ``store.retry_timeout`` once they all ended (no longer after
        a second stop request), then leave them to crash detection: a run whose process
        is gone is found Crashed, and a claimed run that never started is released when
        this worker reads offline."""
        patience: float | None = None
        while True:
            self._reap()
            if not self.children:
                return
            if all(p.exit_code() is not None for p in self.children.values()):
                now = time.monotonic()
                if patience is None:
                    patience = now + self.settings.store.retry_timeout
                if now >= patience or self._stops_requested >= 2:
                    break
            time.sleep(0.02)
        for run_id, process in self.children.items():
            logger.warning(
                "Flow run %s: how its process ended (%s) could not be recorded, the store "
                "being away; it is left to crash detection",
                run_id, describe_exit(process.exit_code() or 0),
            )  # fmt: skip
            process.close()
            self.report.outcomes["unrecorded"] = self.report.outcomes.get("unrecorded", 0) + 1
        self.children.clear()


def _seconds(value: float) -> Any:
    return _dt.timedelta(seconds=value)


def run_until_signalled(worker: Worker) -> WorkerReport:
    """Run ``worker`` in the main thread; SIGTERM and SIGINT (Ctrl-C) stop it cleanly
    (a second one skips the grace period)."""

    def on_signal(signum: int, frame: object) -> None:
        logger.info("Received %s: stopping", signal.Signals(signum).name)
        worker.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ensure_pool(backend: Backend, name: str) -> bool:
    """Create the work pool ``name`` (type process) if it does not exist; whether it was created."""
    try:
        backend.read_work_pool(name)
        return False
    except NotFoundError:
        pass
    try:
        backend.create_work_pool(WorkPoolRecord(name=name))
    except SluiceError:
        # Another worker created it meanwhile.
        backend.read_work_pool(name)
        return False
    return True
