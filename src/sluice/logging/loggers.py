"""Loggers bound to a run, and ``print`` capture for ``log_prints=True``."""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sluice.context import flow_run_var, task_run_var
from sluice.errors import MissingContextError

if TYPE_CHECKING:
    from sluice.backend.protocol import RecordSink
    from sluice.schemas import FlowRunRecord, TaskRunRecord

FLOW_LOGGER_NAME = "sluice.flow_runs"
TASK_LOGGER_NAME = "sluice.task_runs"


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records carry the run they belong to.

    Attributes:
        flow_run: the record of the flow run being logged for, if any.
        task_run: the record of the task run being logged for, if any.
    """

    def __init__(
        self,
        logger: logging.Logger,
        backend: RecordSink,
        label: str,
        flow_run: FlowRunRecord | None,
        task_run: TaskRunRecord | None = None,
    ) -> None:
        super().__init__(logger, {})
        self.flow_run = flow_run
        self.task_run = task_run
        self._fields = {
            "sluice_backend": backend,
            "run_label": label,
            "flow_run_id": flow_run.id
            if flow_run
            else (task_run.flow_run_id if task_run else None),
            "task_run_id": task_run.id if task_run else None,
        }

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self._fields, **extra} if extra else self._fields
        return msg, kwargs


def flow_run_logger(backend: RecordSink, flow_run: FlowRunRecord) -> RunLogger:
    """A logger for ``flow_run``."""
    return RunLogger(
        logging.getLogger(FLOW_LOGGER_NAME), backend, f"Flow run {flow_run.name!r}", flow_run
    )


def task_run_logger(
    backend: RecordSink, task_run: TaskRunRecord, flow_run: FlowRunRecord | None = None
) -> RunLogger:
    """A logger for ``task_run``."""
    return RunLogger(
        logging.getLogger(TASK_LOGGER_NAME),
        backend,
        f"Task run {task_run.name!r}",
        flow_run,
        task_run,
    )


#: The logger that ``print`` goes to while a ``log_prints=True`` run is in progress.
print_target_var: ContextVar[RunLogger | None] = ContextVar("sluice_print_target", default=None)


def get_run_logger() -> RunLogger:
    """The logger of the task or flow run in progress.

    Raises:
        MissingContextError: called outside any flow or task run.
    """
    task_ctx = task_run_var.get()
    if task_ctx is not None:
        return task_ctx.get_logger()
    flow_ctx = flow_run_var.get()
    if flow_ctx is not None:
        return flow_ctx.logger
    raise MissingContextError(
        "get_run_logger() was called outside a flow or task run; "
        "use logging.getLogger() there instead."
    )


_original_print = builtins.print
_patch_lock = threading.Lock()


def _capturing_print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    target = print_target_var.get()
    if target is None or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    target.info((sep if sep is not None else " ").join(str(a) for a in args))


def install_print_capture() -> None:
    """Route ``print`` through the run logger wherever ``log_prints`` is on.

    Installed once, on first use: outside a ``log_prints`` run the replacement
    calls the original ``print`` unchanged.
    """
    if builtins.print is _capturing_print:
        return
    with _patch_lock:
        builtins.print = _capturing_print
