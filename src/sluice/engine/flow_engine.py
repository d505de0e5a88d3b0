"""Running one flow call: parameters, attempts, retries, timeout, subflows, resume.

The decisions live in one class (:class:`FlowRunDriver`); two short drivers
adapt it to sync and ``async def`` flows. A driver either starts a new run or
continues an existing one (resume), replaying the journal of completed task
runs instead of computing them again.
"""

from __future__ import annotations

import logging
import os
import socket
from functools import partial
from typing import TYPE_CHECKING, Any

from sluice.backend.factory import get_backend
from sluice.context import FlowRunContext, flow_run_var, tags_var, task_run_var
from sluice.engine import task_results
from sluice.engine.attempts import run_attempts_async, run_attempts_sync
from sluice.engine.fencing import AttemptGuard
from sluice.engine.final_state import NO_RETURN, call_result, final_state_of
from sluice.engine.flow_setup import (
    entrypoint_of,
    persist_flow_result,
    persist_parameters,
    record_this_process,
    run_name,
)
from sluice.engine.heartbeat import Heartbeat
from sluice.engine.hooks import call_hooks, flow_hooks_for
from sluice.engine.inputs import futures_to_states, input_fingerprint
from sluice.engine.journal import Journal
from sluice.engine.parameters import bind_arguments, call_arguments, jsonable, validate_parameters
from sluice.engine.signals import terminate_gracefully
from sluice.engine.subflows import replay_from_parent, result_for_parent, resumable_children
from sluice.engine.task_calls import task_key_of
from sluice.errors import (
    AbortRun,
    CancelRun,
    EngineSignal,
    FlowTimeoutError,
    ParameterValidationError,
    SerializationError,
    Superseded,
)
from sluice.liveness import lease_window
from sluice.logging.handlers import flush_console, setup_logging
from sluice.logging.loggers import flow_run_logger, install_print_capture, print_target_var
from sluice.results.owners import flow_result_owner
from sluice.retries import retry_delay, should_retry
from sluice.schemas import (
    FlowRecord,
    FlowRunRecord,
    StateRecord,
    TaskRunRecord,
    new_id,
)
from sluice.settings import load_settings
from sluice.states import (
    AwaitingRetry,
    Cancelled,
    Crashed,
    Failed,
    Retrying,
    Running,
    State,
    StateType,
    TimedOut,
)
from sluice.task_runners.threads import ThreadPoolTaskRunner
from sluice.utilities.asyncs import in_async_context, run_coroutine_sync
from sluice.utilities.describe import describe, exception_details, state_label
from sluice.utilities.names import generate_run_name, is_generated_run_name

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.flows import Flow
    from sluice.settings import Settings


def call_flow(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    """Run a flow call; its result, or a coroutine of it for async flows in async code."""
    driver = FlowRunDriver(flow, args, kwargs)
    if flow.isasync:
        coro = _await_flow(driver, return_state)
        if in_async_context() or flow_run_var.get() is None:
            return coro
        return run_coroutine_sync(coro)
    state = run_flow_sync(driver)
    return state if return_state else call_result(driver.returned, state)


async def _await_flow(driver: FlowRunDriver, return_state: bool) -> Any:
    state = await run_flow_async(driver)
    return state if return_state else call_result(driver.returned, state)


class FlowRunDriver:
    """The decisions of one flow run, independent of sync or async execution.

    Args:
        resume: an existing run to run again as itself, instead of creating a
            new one (see :mod:`sluice.engine.existing_run`).
        journal: the completed task runs a resumed run replays.
        store: the settings and store to record in (default: the parent
            flow run's, or this process's).
    """

    def __init__(
        self,
        flow: Flow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        resume: FlowRunRecord | None = None,
        journal: Journal | None = None,
        store: tuple[Settings, Backend] | None = None,
    ) -> None:
        self.flow = flow
        self.args = args
        self.kwargs = kwargs
        self.resume = resume
        self.journal = journal or Journal()
        self.parent = flow_run_var.get()
        if self.parent is not None:
            self.settings = self.parent.settings
            self.backend = self.parent.backend
        elif store is not None:
            self.settings, self.backend = store
        else:
            self.settings = load_settings()
            setup_logging(self.settings)
            self.backend = get_backend(self.settings)
        self.record: FlowRunRecord
        self.ctx: FlowRunContext
        self.parent_task: TaskRunRecord | None = None
        self.parameters: dict[str, Any] = {}
        self._tokens: list[Any] = []
        self._heartbeat: Heartbeat | None = None
        self.guard: AttemptGuard | None = None
        #: attempts made by this driver (a resumed run already has earlier ones)
        self._attempts = 0
        #: what the flow function returned, futures turned into their states
        self.returned: Any = NO_RETURN

    # -- creation ----------------------------------------------------------------
    def create(self) -> State | None:
        """Record the run (Pending) and validate parameters.

        Returns a final state when the function must not run: invalid
        parameters, or a subflow call the parent's journal answers.
        """
        flow = self.flow
        self.backend.write_flow(
            FlowRecord(flow.name, description=flow.description, version=flow.options.version)
        )
        error: ParameterValidationError | None = None
        try:
            parameters = bind_arguments(flow.fn, flow.name, self.args, self.kwargs)
            if flow.options.validate_parameters:
                parameters = validate_parameters(flow.fn, flow.name, parameters)
        except ParameterValidationError as exc:
            error = exc
            parameters = {**{str(i): a for i, a in enumerate(self.args)}, **self.kwargs}
        self.parameters = parameters
        if error is None:
            self.args, self.kwargs = call_arguments(flow.fn, parameters)
        if self.parent is not None:
            replayed = self._enter_parent_position()
            if replayed is not None:
                return replayed
        if self.resume is not None:
            self.record = self.resume
            self.log = flow_run_logger(self.backend, self.record)
            return None
        self.record = self._new_record(parameters if error is None else {})
        self.log = flow_run_logger(self.backend, self.record)
        if self.parent_task is not None:
            self.record.parent_task_run_id = self.parent_task.id
        self.write(State(StateType.PENDING))
        if error is not None:
            return self.finish(Failed(message=str(error), exception=error), error)
        return None

    def _new_record(self, parameters: dict[str, Any]) -> FlowRunRecord:
        run_id = new_id()
        record = FlowRunRecord(
            id=run_id,
            flow_name=self.flow.name,
            # A callable name is asked for in the run's context (see enter).
            name=generate_run_name()
            if callable(self.flow.options.flow_run_name)
            else run_name(self.flow, parameters),
            parameters=jsonable({str(k): v for k, v in self.parameters.items()}),
            tags=sorted(self.flow.tags | tags_var.get()),
            parent_flow_run_id=self.parent.flow_run.id if self.parent else None,
            flow_version=self.flow.options.version,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            entrypoint=entrypoint_of(self.flow),
            parameters_ref=persist_parameters(self.settings, run_id, self.parameters)
            if parameters
            else None,
            # A new run is its own first attempt: nobody else can hold it yet.
            attempt=1,
        )
        record_this_process(record)
        return record

    def _enter_parent_position(self) -> State | None:
        """Claim this subflow call's position in the parent: replay it from the
        parent's journal, resume the child run recorded there, or start fresh."""
        parent = self.parent
        assert parent is not None
        index = parent.next_call_index(self.flow.name)
        key = task_key_of(self.flow.name, index, -1)
        input_hash = input_fingerprint(self.args, self.kwargs)
        refusal = partial(task_results.replay_refusal, parent.settings)
        entry = parent.journal.lookup(self.flow.name, index, key, input_hash, refusal)
        if entry is not None:
            return replay_from_parent(self.backend, parent, self.flow.name, entry)
        child = parent.resumable_children.get(key)
        if child is not None and self.resume is None:
            self.resume = child
            self.journal = Journal(self.backend.read_journal(child.id))
        task_ctx = task_run_var.get()
        self.parent_task = TaskRunRecord(
            id=(child.parent_task_run_id if child else None) or new_id(),
            task_name=self.flow.name,
            name=f"{self.flow.name}-{index}",
            flow_run_id=parent.flow_run.id,
            call_index=index,
            upstream_ids=[task_ctx.task_run.id] if task_ctx else [],
            input_hash=input_hash,
        )
        return None

    def write(self, state: State, details: dict[str, Any] | None = None) -> State:
        state.run_id = self.record.id
        self.record.apply(state)
        self.backend.write_flow_run(
            self.record, StateRecord.from_state(self.record.id, "flow", state, details)
        )
        if self.parent_task is not None and state.type is not StateType.SCHEDULED:
            self.parent_task.apply(state)
            self.parent_task.run_count = self.record.run_count
            self.parent_task.result = result_for_parent(
                self.settings, self.record, self.parent_task
            )
            self.backend.write_task_run(
                self.parent_task, StateRecord.from_state(self.parent_task.id, "task", state)
            )
        return state

    # -- context -----------------------------------------------------------------
    def _take_hold(self) -> AttemptGuard:
        """Take this execution's attempt of the run (a resumed run: the next one, from
        the store) and fence every write from now on with it."""
        record = self.record
        if self.resume is not None:
            record.attempt = self.backend.claim_attempt(record.id)
            record_this_process(record)
        self.backend.hold_attempt(record.id, record.attempt)
        window = lease_window(self.settings.heartbeat_timeout)
        parent_guard = self.parent.guard if self.parent is not None else None
        return AttemptGuard(self.backend, record.id, record.attempt, window, parent_guard)

    def enter(self) -> None:
        template = self.flow.options.task_runner or ThreadPoolTaskRunner()
        runner = template.duplicate()
        try:
            runner.start()
        except BaseException as exc:
            # Nothing ran yet, but the run must not stay Pending forever.
            message = f"Task runner {type(runner).__name__} failed to start: {describe(exc)}"
            self.finish(Crashed(message=message, exception=exc), exc)
            raise
        if self.flow.options.log_prints is not None:
            log_prints = self.flow.options.log_prints
        else:
            log_prints = self.parent.log_prints if self.parent else False
        self.ctx = FlowRunContext(
            self.flow,
            self.record,
            self.backend,
            self.settings,
            runner,
            self.parameters,
            self.log,
            log_prints,
            self.journal,
            keep_journal=self.flow.retries > 0,
        )
        if self.resume is not None and self.record.run_count:  # never ran: no children
            self.ctx.resumable_children = resumable_children(self.backend, self.record.id)
        self.guard = self.ctx.guard = self._take_hold()
        self._tokens = [flow_run_var.set(self.ctx), task_run_var.set(None)]
        self._name_run()
        if log_prints:
            install_print_capture()
            self._tokens.append(print_target_var.set(self.log))
        if self.parent is None:
            self._heartbeat = Heartbeat(
                self.backend, self.record.id, self.settings.heartbeat_interval, self.guard
            )
            self._heartbeat.start()
            self.ctx.heartbeat = self._heartbeat
        elif self.parent.heartbeat is not None:
            # A subflow beats with its parent: it is alive as long as the process is.
            self.ctx.heartbeat = self.parent.heartbeat
            self.ctx.heartbeat.add(self.record.id)
        verb = "Resuming" if self.resume is not None and self.record.run_count else "Beginning"
        self.log.info("%s flow run %r for flow %r", verb, self.record.name, self.flow.name)
        if len(self.journal):
            self.log.info("The journal holds %d completed task runs", len(self.journal))

    def _name_run(self) -> None:
        """Give a run starting for the first time its ``flow_run_name``: a callable one
        (it may read ``sluice.runtime.flow_run``), and any for a run created ahead
        under a generated name (a deployment's run; a name chosen with
        ``run_deployment(flow_run_name=...)`` stays). Kept from then on."""
        template = self.flow.options.flow_run_name
        if template is None or self.record.run_count:
            return
        if self.resume is None and not callable(template):
            return  # named when created
        if self.resume is not None and not is_generated_run_name(self.record.name):
            return
        try:
            self.record.name = run_name(self.flow, self.parameters)
        except Exception:
            self.log.exception("flow_run_name raised; the run keeps the name %r", self.record.name)

    def exit(self, failed: bool) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
        elif self.ctx.heartbeat is not None:
            self.ctx.heartbeat.remove(self.record.id)
        if not self.backend.attempt_lost(self.record.id):
            # A superseded attempt keeps its fence: what it still has buffered is refused.
            self.backend.release_attempt(self.record.id)
        self.ctx.task_runner.shutdown(cancel_pending=failed)
        flow_token, task_token, *rest = self._tokens
        if rest:
            print_target_var.reset(rest[0])
        task_run_var.reset(task_token)
        flow_run_var.reset(flow_token)

    # -- attempts ----------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether an attempt began (the flow's code may have run)."""
        return self._attempts > 0

    def begin_attempt(self) -> None:
        self.record.run_count += 1
        ctx = self.ctx
        # Each attempt re-executes the flow function from its start: call
        # positions count from zero again and the journal replays from the top.
        ctx.call_counters.clear()
        ctx.futures = []
        if ctx.keep_journal and self.record.run_count > 1:
            ctx.journal = ctx.journal.restart()
        self._attempts += 1
        # A run created ahead (by a deployment) that never ran starts plainly.
        if self.resume is not None and self._attempts == 1 and self.record.run_count > 1:
            running = self.write(Running(name="Resuming"))
        else:
            running = self.write(Running() if self.record.run_count == 1 else Retrying())
        if self._attempts == 1:
            # The run's own record is committed before its first task starts:
            # a crash from here on leaves a run to find (Crashed) and resume,
            # and a worker's run is Running for whoever acts on it (a cancel).
            self.backend.flush()
        if self.flow.on_running:
            self._run_hooks(running)

    def on_return(self, value: Any) -> State:
        """The final state the return value decides (see :mod:`sluice.engine.final_state`)."""
        self._wait_for_submitted()
        self.returned = futures_to_states(value)
        state = final_state_of(self.returned)
        if not state.is_completed():
            return self.finish(state, state.exception)
        try:
            self.record.result = persist_flow_result(
                self.flow, self.settings, self.record.id, state.data
            )
        except SerializationError as exc:
            return self.finish(Failed(message=str(exc), exception=exc), exc)
        state.result_ref = self.record.result
        state.result_owner = flow_result_owner(self.record.id)
        return self.finish(state)

    def on_exception(self, exc: BaseException) -> State | float:
        """The final state for ``exc``, or the delay before the next attempt."""
        if isinstance(exc, Superseded):
            raise exc  # another process runs it now: record nothing, wait for nothing
        self._wait_for_submitted()
        if isinstance(exc, AbortRun):
            raise exc
        if isinstance(exc, CancelRun):
            return self.finish(Cancelled(message=str(exc) or "Cancelled by request"))
        if isinstance(exc, (EngineSignal, KeyboardInterrupt, SystemExit, GeneratorExit)):
            message = f"Execution was interrupted: {describe(exc)}"
            self.finish(Crashed(message=message, exception=exc), exc)
            raise exc
        run_count = self.record.run_count
        if should_retry(self.flow.retry_policy, run_count, exc):
            delay = retry_delay(self.flow.retry_policy, run_count)
            self.log.warning(
                "Attempt %d failed with %s; retrying in %.3g s", run_count, describe(exc), delay
            )
            self.write(AwaitingRetry(message=describe(exc)), exception_details(exc, delay))
            return delay
        if isinstance(exc, FlowTimeoutError):
            return self.finish(TimedOut(message=str(exc), exception=exc), exc)
        message = f"Flow run encountered an exception {describe(exc)}"
        return self.finish(Failed(message=message, exception=exc), exc)

    def finish(self, state: State, exc: BaseException | None = None) -> State:
        self.write(state, exception_details(exc) if exc is not None else None)
        if exc is not None and not isinstance(exc, (EngineSignal, ParameterValidationError)):
            self.log.error("Finished in state %s", state_label(state), exc_info=exc)
        else:
            level = logging.INFO if state.is_completed() else logging.WARNING
            self.log.log(level, "Finished in state %s", state_label(state))
        self._run_hooks(state)
        parent = self.parent
        if parent is not None and parent.keep_journal and self.parent_task is not None:
            parent.journal.record(self.parent_task)
        if self.parent is None:
            flush_console()
            self.backend.flush()
            if self.guard is not None and self.backend.attempt_lost(self.record.id):
                # The store refused this attempt's records: the state above is not
                # the run's, whatever this process computed.
                raise Superseded(self.record.id, self.record.attempt)
        return state

    def timeout_error(self) -> FlowTimeoutError:
        limit = self.flow.options.timeout_seconds
        return FlowTimeoutError(f"Flow run {self.record.name!r} exceeded its timeout of {limit} s")

    def _wait_for_submitted(self) -> None:
        for future in self.ctx.futures:
            future.wait()

    def _run_hooks(self, state: State) -> None:
        hooks = flow_hooks_for(self.flow, state)
        if hooks:
            call_hooks(hooks, self.flow, self.record, state, self._hook_line)

    def _hook_line(self, level: int, message: str, exc: BaseException) -> None:
        self.log.log(level, "%s", message, exc_info=exc)


def run_flow_sync(driver: FlowRunDriver) -> State:
    """Execute a flow run in this thread until a final state."""
    early = driver.create()
    if early is not None:
        return early
    with terminate_gracefully():
        driver.enter()
        failed = True
        try:
            flow = driver.flow
            state = run_attempts_sync(
                driver, flow.fn, driver.args, driver.kwargs, flow.options.timeout_seconds
            )
            failed = not state.is_completed()
            return state
        finally:
            driver.exit(failed)


async def run_flow_async(driver: FlowRunDriver) -> State:
    """Execute an ``async def`` flow run until a final state."""
    early = driver.create()
    if early is not None:
        return early
    driver.enter()
    failed = True
    try:
        flow = driver.flow
        state = await run_attempts_async(
            driver, flow.fn, driver.args, driver.kwargs, flow.options.timeout_seconds
        )
        failed = not state.is_completed()
        return state
    finally:
        driver.exit(failed)
