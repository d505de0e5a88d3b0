"""Running one flow call: parameters, attempts, retries, timeout, subflows, states.

Like the task engine, the decisions live in one class (:class:`FlowRunDriver`)
and two short drivers adapt it to sync and ``async def`` flows.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from sluice.context import FlowRunContext, flow_run_var, tags_var, task_run_var
from sluice.engine.parameters import bind_arguments, jsonable, validate_parameters
from sluice.engine.retries import retry_delay, should_retry
from sluice.engine.task_engine import _describe, _exception_details, _label
from sluice.engine.timeouts import call_with_time_limit
from sluice.errors import (
    AbortRun,
    CancelRun,
    EngineSignal,
    FlowTimeoutError,
    ParameterValidationError,
)
from sluice.futures import SluiceFuture
from sluice.logging.loggers import flow_run_logger, print_target_var
from sluice.schemas import FlowRecord, FlowRunRecord, StateRecord, TaskRunRecord, new_id
from sluice.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Retrying,
    Running,
    State,
    StateType,
    TimedOut,
)
from sluice.utilities.asyncs import in_async_context, run_coroutine_sync
from sluice.utilities.names import generate_run_name

if TYPE_CHECKING:
    from sluice.flows import Flow


def call_flow(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    """Run a flow call; its result, or a coroutine of it for async flows in async code."""
    if flow.isasync:
        coro = _await_flow(flow, args, kwargs, return_state)
        if in_async_context() or flow_run_var.get() is None:
            return coro
        return run_coroutine_sync(coro)
    driver = FlowRunDriver(flow, args, kwargs)
    state = run_flow_sync(driver)
    return state if return_state else state.result()


async def _await_flow(
    flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool
) -> Any:
    state = await run_flow_async(FlowRunDriver(flow, args, kwargs))
    return state if return_state else state.result()


class FlowRunDriver:
    """The decisions of one flow run, independent of sync or async execution."""

    def __init__(self, flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        from sluice.logging.handlers import setup_logging

        self.flow = flow
        self.args = args
        self.kwargs = kwargs
        self.parent = flow_run_var.get()
        if self.parent is not None:
            self.settings = self.parent.settings
            self.backend = self.parent.backend
        else:
            from sluice.backend.factory import get_backend
            from sluice.settings import load_settings

            self.settings = load_settings()
            setup_logging(self.settings)
            self.backend = get_backend(self.settings)
        self.record: FlowRunRecord
        self.ctx: FlowRunContext
        self.parent_task: TaskRunRecord | None = None
        self._tokens: list[Any] = []

    # -- creation ----------------------------------------------------------------
    def create(self) -> State | None:
        """Record the run (Pending) and validate parameters; a final state if invalid."""
        flow = self.flow
        self.backend.write_flow(
            FlowRecord(flow.name, description=flow.description, version=flow.version)
        )
        error: ParameterValidationError | None = None
        try:
            parameters = bind_arguments(flow.fn, flow.name, self.args, self.kwargs)
            if flow.should_validate_parameters:
                parameters = validate_parameters(flow.fn, flow.name, parameters)
        except ParameterValidationError as exc:
            error, parameters = exc, {**{str(i): a for i, a in enumerate(self.args)}, **self.kwargs}
        self.parameters = parameters
        if error is None:
            from sluice.engine.parameters import call_arguments

            self.args, self.kwargs = call_arguments(flow.fn, parameters)
        self.record = FlowRunRecord(
            id=new_id(),
            flow_name=flow.name,
            name=self._run_name(parameters if error is None else {}),
            parameters=jsonable({str(k): v for k, v in parameters.items()}),
            tags=sorted(flow.tags | tags_var.get()),
            parent_flow_run_id=self.parent.flow_run.id if self.parent else None,
            flow_version=flow.version,
            hostname=socket.gethostname(),
            pid=os.getpid(),
        )
        self.log = flow_run_logger(self.backend, self.record)
        if self.parent is not None:
            self._create_parent_task()
        self.write(State(StateType.PENDING))
        if error is not None:
            return self.finish(Failed(message=str(error), exception=error), error)
        return None

    def _run_name(self, parameters: dict[str, Any]) -> str:
        template = self.flow.flow_run_name
        if template is None:
            return generate_run_name()
        if callable(template):
            return str(template())
        try:
            return template.format(**parameters)
        except (KeyError, IndexError, ValueError):
            return template

    def _create_parent_task(self) -> None:
        """A task run in the parent that stands for this subflow call."""
        assert self.parent is not None
        index = self.parent.next_call_index(self.flow.name)
        task_ctx = task_run_var.get()
        self.parent_task = TaskRunRecord(
            id=new_id(),
            task_name=self.flow.name,
            name=f"{self.flow.name}-{index}",
            flow_run_id=self.parent.flow_run.id,
            call_index=index,
            upstream_ids=[task_ctx.task_run.id] if task_ctx else [],
        )
        self.record.parent_task_run_id = self.parent_task.id

    def write(self, state: State, details: dict[str, Any] | None = None) -> State:
        state.run_id = self.record.id
        self.record.apply(state)
        self.backend.write_flow_run(
            self.record, StateRecord.from_state(self.record.id, "flow", state, details)
        )
        if self.parent_task is not None and state.type is not StateType.SCHEDULED:
            self.parent_task.apply(state)
            self.parent_task.run_count = self.record.run_count
            self.backend.write_task_run(
                self.parent_task, StateRecord.from_state(self.parent_task.id, "task", state)
            )
        return state

    # -- context -----------------------------------------------------------------
    def enter(self) -> None:
        from sluice.task_runners.threads import ThreadPoolTaskRunner

        template = self.flow.task_runner or ThreadPoolTaskRunner()
        runner = template.duplicate()
        runner.start()
        log_prints = (
            bool(self.flow.log_prints)
            if self.flow.log_prints is not None
            else (self.parent.log_prints if self.parent else False)
        )
        self.ctx = FlowRunContext(
            self.flow,
            self.record,
            self.backend,
            self.settings,
            runner,
            self.parameters,
            self.log,
            log_prints,
        )
        self._tokens = [flow_run_var.set(self.ctx), task_run_var.set(None)]
        if log_prints:
            from sluice.logging.loggers import install_print_capture

            install_print_capture()
            self._tokens.append(print_target_var.set(self.log))
        self.log.info("Beginning flow run %r for flow %r", self.record.name, self.flow.name)

    def exit(self, failed: bool) -> None:
        self.ctx.task_runner.shutdown(cancel_pending=failed)
        flow_token, task_token, *rest = self._tokens
        if rest:
            print_target_var.reset(rest[0])
        task_run_var.reset(task_token)
        flow_run_var.reset(flow_token)

    # -- attempts ----------------------------------------------------------------
    def begin_attempt(self) -> None:
        self.record.run_count += 1
        # Each attempt re-executes the flow function from its start, so call
        # positions count from zero again.
        self.ctx.call_counters.clear()
        self.ctx.futures = []
        self.write(Running() if self.record.run_count == 1 else Retrying())

    def on_return(self, value: Any) -> State:
        self._wait_for_submitted()
        resolved, failed = _resolve_returned(value)
        if failed:
            message = f"{len(failed)} of the returned runs did not complete"
            return self.finish(Failed(message=message, data=resolved))
        return self.finish(Completed(data=resolved))

    def on_exception(self, exc: BaseException) -> State | float:
        """The final state for ``exc``, or the delay before the next attempt."""
        self._wait_for_submitted()
        if isinstance(exc, AbortRun):
            raise exc
        if isinstance(exc, CancelRun):
            return self.finish(Cancelled(message=str(exc) or "Cancelled by request"))
        if isinstance(exc, (EngineSignal, KeyboardInterrupt, SystemExit, GeneratorExit)):
            self.finish(
                Crashed(message=f"Execution was interrupted: {_describe(exc)}", exception=exc), exc
            )
            raise exc
        run_count = self.record.run_count
        if should_retry(self.flow.retry_policy, run_count, exc):
            delay = retry_delay(self.flow.retry_policy, run_count)
            self.log.warning(
                "Attempt %d failed with %s; retrying in %.3g s", run_count, _describe(exc), delay
            )
            self.write(AwaitingRetry(message=_describe(exc)), _exception_details(exc, delay))
            return delay
        if isinstance(exc, FlowTimeoutError):
            return self.finish(TimedOut(message=str(exc), exception=exc), exc)
        return self.finish(
            Failed(message=f"Flow run encountered an exception {_describe(exc)}", exception=exc),
            exc,
        )

    def finish(self, state: State, exc: BaseException | None = None) -> State:
        self.write(state, _exception_details(exc) if exc is not None else None)
        if exc is not None and not isinstance(exc, (EngineSignal, ParameterValidationError)):
            self.log.error("Finished in state %s", _label(state), exc_info=exc)
        else:
            self.log.info("Finished in state %s", _label(state))
        self._run_hooks(state)
        if self.parent is None:
            from sluice.logging.handlers import flush_console

            flush_console()
            self.backend.flush()
        return state

    def timeout_error(self) -> FlowTimeoutError:
        return FlowTimeoutError(
            f"Flow run {self.record.name!r} exceeded its timeout of {self.flow.timeout_seconds} s"
        )

    def _wait_for_submitted(self) -> None:
        for future in self.ctx.futures:
            future.wait()

    def _run_hooks(self, state: State) -> None:
        flow = self.flow
        hooks = {
            StateType.COMPLETED: flow.on_completion,
            StateType.FAILED: flow.on_failure,
            StateType.CRASHED: flow.on_crashed,
            StateType.CANCELLED: flow.on_cancellation,
        }.get(state.type, [])
        for hook in hooks:
            try:
                hook(flow, self.record, state)
            except Exception:
                self.log.exception("Hook %r raised; the run's state is unchanged", hook)


def run_flow_sync(driver: FlowRunDriver) -> State:
    """Execute a flow run in this thread until a final state."""
    early = driver.create()
    if early is not None:
        return early
    driver.enter()
    failed = True
    try:
        while True:
            driver.begin_attempt()
            try:
                value = call_with_time_limit(
                    driver.flow.fn,
                    driver.args,
                    driver.kwargs,
                    driver.flow.timeout_seconds,
                    driver.timeout_error,
                )
            except BaseException as exc:
                outcome = driver.on_exception(exc)
            else:
                outcome = driver.on_return(value)
            if isinstance(outcome, State):
                failed = not outcome.is_completed()
                return outcome
            time.sleep(outcome)
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
        while True:
            driver.begin_attempt()
            try:
                coro = driver.flow.fn(*driver.args, **driver.kwargs)
                if driver.flow.timeout_seconds:
                    try:
                        value = await asyncio.wait_for(coro, driver.flow.timeout_seconds)
                    except asyncio.TimeoutError:
                        raise driver.timeout_error() from None
                else:
                    value = await coro
            except BaseException as exc:
                outcome = driver.on_exception(exc)
            else:
                outcome = driver.on_return(value)
            if isinstance(outcome, State):
                failed = not outcome.is_completed()
                return outcome
            await asyncio.sleep(outcome)
    finally:
        driver.exit(failed)


def _resolve_returned(value: Any) -> tuple[Any, list[State]]:
    """Replace returned futures/states by their results; collect the failed ones."""
    failed: list[State] = []

    def resolve(item: Any, depth: int) -> Any:
        if isinstance(item, SluiceFuture):
            item.wait()
            item = item.state
        if isinstance(item, State):
            if not item.is_final():
                return item
            if not item.is_completed():
                failed.append(item)
                return item.result(raise_on_failure=False)
            return item.data
        if depth >= 3:
            return item
        if isinstance(item, list):
            return [resolve(v, depth + 1) for v in item]
        if isinstance(item, tuple) and not hasattr(item, "_fields"):
            return tuple(resolve(v, depth + 1) for v in item)
        if isinstance(item, dict):
            return {k: resolve(v, depth + 1) for k, v in item.items()}
        return item

    return resolve(value, 0), failed
