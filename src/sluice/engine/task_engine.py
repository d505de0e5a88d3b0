"""Running one task call: inputs, attempts, retries, timeouts, states, hooks.

The orchestration is written once (:class:`TaskAttempts`); two short drivers
adapt it to the colour of the user's function (:func:`run_task_sync`,
:func:`run_task_async`). Task runners reach them through the call they are
handed (:meth:`sluice.engine.task_call.TaskCall.run`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sluice.context import FlowRunContext, TaskRunContext, flow_run_var, task_run_var
from sluice.engine import task_results
from sluice.engine.attempts import run_attempts_async, run_attempts_sync
from sluice.engine.final_state import final_state_of, holds_states
from sluice.engine.hooks import call_hooks, task_hooks_for
from sluice.engine.inputs import not_ready, resolve_inputs, unready_wait_for
from sluice.engine.task_transactions import open_task_transaction, settle
from sluice.errors import (
    AbortRun,
    CancelRun,
    EngineSignal,
    ResultIntegrityError,
    ResultMissingError,
    SerializationError,
    TaskTimeoutError,
)
from sluice.logging.loggers import install_print_capture, print_target_var
from sluice.results.owners import owner_of_task_run
from sluice.retries import retry_delay, should_retry
from sluice.states import (
    NOT_LOADED,
    AwaitingRetry,
    Cached,
    Cancelled,
    Crashed,
    Failed,
    Retrying,
    State,
    StateType,
    TimedOut,
    utcnow,
)
from sluice.transactions import Transaction, activate, deactivate
from sluice.utilities.annotations import has_annotations
from sluice.utilities.asyncs import run_coroutine_sync
from sluice.utilities.describe import describe, exception_details, state_label

if TYPE_CHECKING:
    from contextvars import Token

    from sluice.engine.task_call import TaskCall

# Module names for the members a direct call uses: ``StateType.X`` runs
# EnumType.__getattr__ on Python 3.11.
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_FAILED = StateType.FAILED
#: what a function may return that holds states (one isinstance test per return)
_MAY_HOLD_STATES = (State, list, tuple, set, frozenset)
#: return types that never hold states: skip even that test for them
_PLAIN_RETURNS = frozenset({int, str, float, bool, type(None), dict, bytes})


class TaskAttempts:
    """The decisions of a task run, independent of sync or async execution."""

    def __init__(self, call: TaskCall) -> None:
        self.call = call
        self.task = call.task
        #: the run's own transaction and the token making it current (see enter)
        self._txn: Transaction | None = None
        self._txn_token: Token[Transaction | None] | None = None
        self._task_token: Token[TaskRunContext | None] | None = None
        self._flow_token: Token[FlowRunContext | None] | None = None
        self._print_token: Token[Any] | None = None

    # -- context ---------------------------------------------------------------
    def enter(self) -> None:
        call = self.call
        ctx = TaskRunContext(
            self.task, call.record, call, call.log_prints, call.record.flow_run_id, call.logger
        )
        self._task_token = task_run_var.set(ctx)
        # A direct call already runs in its flow run's context; setting the
        # same value again would copy the context for nothing.
        if flow_run_var.get() is not call.flow_ctx:
            self._flow_token = flow_run_var.set(call.flow_ctx)
        if call.log_prints:
            install_print_capture()
            self._print_token = print_target_var.set(ctx.get_logger())
        if call.transaction is not None or self.task.on_commit_hooks or self.task.on_rollback_hooks:
            self._txn = open_task_transaction(call)
            if self._txn is not None:
                self._txn_token = activate(self._txn)

    def exit(self) -> None:
        if self._txn_token is not None:
            deactivate(self._txn_token)
        if self._print_token is not None:
            print_target_var.reset(self._print_token)
        if self._flow_token is not None:
            flow_run_var.reset(self._flow_token)
        if self._task_token is not None:
            task_run_var.reset(self._task_token)

    # -- steps -------------------------------------------------------------------
    def prepare(self) -> State | None:
        """Resolve upstream futures and consult the cache; the state to end in if the
        function must not run (an upstream did not complete: NotReady; or the cache
        has the answer)."""
        call = self.call
        if call.prepared:
            return None
        call.prepared = True
        if call.upstream or has_annotations(call.args, call.kwargs):
            args, kwargs, unready = resolve_inputs(call.args, call.kwargs)
            if unready is None and call.wait_for:
                unready = unready_wait_for(call.wait_for)
            if unready is not None:
                return self.finish(not_ready(unready))
            call.args, call.kwargs = args, kwargs
        if self.task.effective_cache_policy is not None:
            return self._consult_cache()
        return None

    def _consult_cache(self) -> State | None:
        call, record = self.call, self.call.record
        try:
            key = task_results.cache_key_for(call)
        except SerializationError as exc:
            # Never run (and cache) a call whose identity cannot be computed.
            return self.finish(Failed(message=str(exc), exception=exc), exc)
        if key is None:
            return None
        now = utcnow()
        record.cache_key = key
        record.cache_expiration = task_results.cache_expiration(call, now)
        if self.task.options.refresh_cache:
            return None
        hit = task_results.find_cached(call, key, now)
        if hit is None:
            return None
        try:
            # Signed again for this record: the hit's own signature names the hit.
            record.result = task_results.adopt_cached_result(call, hit)
        except (ResultIntegrityError, ResultMissingError) as exc:
            call.line(logging.WARNING, f"Cached result not used, the task runs: {exc}")
            return None
        record.cache_expiration = hit.cache_expiration
        state = Cached(
            data=NOT_LOADED,
            result_ref=record.result,
            result_owner=owner_of_task_run(record),
            message=f"Result of task run {hit.id} (cache key {key[:24]}...)",
        )
        return self.finish(state)

    def begin_attempt(self) -> None:
        record = self.call.record
        record.run_count += 1
        state = self.call.write(State(_RUNNING, "Running") if record.run_count == 1 else Retrying())
        if self.task.on_running:
            self._run_hooks(state)

    def on_return(self, value: Any) -> State:
        if (
            value.__class__ not in _PLAIN_RETURNS
            and isinstance(value, _MAY_HOLD_STATES)
            and holds_states(value)
        ):
            return self._on_returned_states(value)
        call = self.call
        ref = None
        owner = None
        if task_results.should_persist(call):
            owner = owner_of_task_run(call.record)
            try:
                ref = task_results.persist_task_result(call, value, owner)
            except SerializationError as exc:
                return self.finish(Failed(message=str(exc), exception=exc), exc)
        call.record.result = ref
        state = self.finish(
            State(_COMPLETED, "Completed", data=value, result_ref=ref, result_owner=owner)
        )
        if not self.task.options.cache_result_in_memory:
            state.forget_data()
        if call.flow_ctx is not None and call.flow_ctx.keep_journal:
            call.flow_ctx.journal.record(call.record)
        return state

    def _on_returned_states(self, value: Any) -> State:
        """The function returned a state (or states): the run ends as the rules of
        :mod:`sluice.engine.final_state` say, a Completed one with its data stored."""
        call = self.call
        call.returned_state = value
        state = final_state_of(value)
        if not state.is_completed():
            return self.finish(state, state.exception)
        if task_results.should_persist(call):
            owner = owner_of_task_run(call.record)
            try:
                state.result_ref = task_results.persist_task_result(call, state.data, owner)
                state.result_owner = owner
            except SerializationError as exc:
                return self.finish(Failed(message=str(exc), exception=exc), exc)
        call.record.result = state.result_ref
        self.finish(state)
        if not self.task.options.cache_result_in_memory:
            state.forget_data()
        if call.flow_ctx is not None and call.flow_ctx.keep_journal:
            call.flow_ctx.journal.record(call.record)
        return state

    def on_exception(self, exc: BaseException) -> State | float:
        """The final state for ``exc``, or the delay before the next attempt."""
        if isinstance(exc, AbortRun):
            raise exc
        if isinstance(exc, CancelRun):
            # The whole run is being cancelled: the flow must see it too, to end
            # Cancelled (and call its on_cancellation hooks) rather than Failed.
            self.finish(Cancelled(message=str(exc) or "Cancelled by request"))
            raise exc
        if isinstance(exc, (EngineSignal, KeyboardInterrupt, SystemExit, GeneratorExit)):
            self.finish(Crashed(message=describe(exc), exception=exc), exc)
            raise exc
        run_count = self.call.record.run_count
        task, record = self.task, self.call.record
        if should_retry(task.retry_policy, run_count, exc, task, record, self._condition_broke):
            delay = retry_delay(self.task.retry_policy, run_count)
            self.call.line(
                logging.WARNING,
                f"Attempt {run_count} failed with {describe(exc)}; retrying in {delay:.3g} s "
                f"({run_count} of {self.task.retries} retries)",
            )
            self.call.write(AwaitingRetry(message=describe(exc)), exception_details(exc, delay))
            return delay
        if isinstance(exc, TaskTimeoutError):
            return self.finish(TimedOut(message=str(exc), exception=exc), exc)
        message = f"Task run encountered an exception {describe(exc)}"
        return self.finish(Failed(message=message, exception=exc), exc)

    def _condition_broke(self, error: BaseException) -> None:
        self.call.line(
            logging.ERROR,
            f"retry_condition_fn raised, so the task is not retried: {describe(error)}",
            error,
        )

    def finish(self, state: State, exc: BaseException | None = None) -> State:
        self.call.write(state, exception_details(exc) if exc is not None else None)
        message = f"Finished in state {state_label(state)}"
        if exc is not None and not isinstance(exc, EngineSignal):
            self.call.line(logging.ERROR, message, exc, state.timestamp)
        elif state.type is _FAILED:  # a Failed state the task returned
            self.call.line(logging.WARNING, message, at=state.timestamp)
        else:
            # A plain success line says nothing the state history does not: print
            # it, but keep the store for lines that carry news.
            routine = state.is_completed() and state.name == "Completed"
            self.call.line(logging.INFO, message, at=state.timestamp, store=not routine)
        if self.task.on_completion or self.task.on_failure:
            self._run_hooks(state)
        if self._txn is not None or self.call.transaction is not None:
            settle(self.call, self._txn, state)
        return state

    def timeout_error(self) -> TaskTimeoutError:
        return TaskTimeoutError(
            f"Task run {self.call.record.name!r} exceeded its timeout of "
            f"{self.task.options.timeout_seconds} s"
        )

    def _run_hooks(self, state: State) -> None:
        hooks = task_hooks_for(self.task, state)
        if hooks:
            call_hooks(hooks, self.task, self.call.record, state, self.call.line)


def run_task_sync(call: TaskCall) -> State:
    """Execute ``call`` in this thread until a final state; returns that state."""
    if call.task.isasync:
        return run_coroutine_sync(run_task_async(call))
    attempts = TaskAttempts(call)
    early = attempts.prepare()
    if early is not None:
        return early
    attempts.enter()
    try:
        task = call.task
        return run_attempts_sync(
            attempts, task.fn, call.args, call.kwargs, task.options.timeout_seconds
        )
    finally:
        attempts.exit()


async def run_task_async(call: TaskCall) -> State:
    """Execute ``call`` (an ``async def`` task) until a final state."""
    attempts = TaskAttempts(call)
    early = attempts.prepare()
    if early is not None:
        return early
    attempts.enter()
    try:
        task = call.task
        return await run_attempts_async(
            attempts, task.fn, call.args, call.kwargs, task.options.timeout_seconds
        )
    finally:
        attempts.exit()
