"""Where run logs go: the console and the store. Configured once per process."""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import traceback
from typing import TYPE_CHECKING, TextIO

from sluice.logging.console import ConsoleHandler, ConsoleWriter
from sluice.logging.forwarding import RootForwarder, forward_line
from sluice.schemas import LogRecord
from sluice.settings import load_settings

if TYPE_CHECKING:
    from sluice.backend.protocol import RecordSink
    from sluice.settings import Settings

#: Parent of every logger Sluice writes run logs and engine lines to.
ROOT_LOGGER_NAME = "sluice"

_UTC = _dt.timezone.utc
_root_logger = logging.getLogger()


class StoreHandler(logging.Handler):
    """Send records that belong to a run to that run's backend (batched there)."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(record, "sluice_backend", None)
        if sink is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            sink.write_logs(
                [
                    LogRecord(
                        flow_run_id=getattr(record, "flow_run_id", None),
                        task_run_id=getattr(record, "task_run_id", None),
                        level=record.levelno,
                        logger=record.name,
                        message=message,
                        timestamp=_dt.datetime.fromtimestamp(record.created, _UTC),
                    )
                ]
            )
        except Exception:
            self.handleError(record)


class LogRouting:
    """The process's log destinations and thresholds."""

    def __init__(self, console_level: int, store_level: int, state_lines: bool) -> None:
        self.console = ConsoleWriter()
        self.console_level = console_level
        self.store_level = store_level
        #: print a console line for every task run state (they are always stored)
        self.state_lines = state_lines


_setup_lock = threading.Lock()
_routing: LogRouting | None = None


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.INFO


def setup_logging(settings: Settings, stream: TextIO | None = None) -> LogRouting:
    """Attach Sluice's console and store handlers once per process."""
    global _routing
    if _routing is not None:
        return _routing
    with _setup_lock:
        if _routing is not None:
            return _routing
        routing = LogRouting(
            _level(settings.logging.level),
            _level(settings.logging.store_level),
            settings.logging.task_state_lines,
        )
        if stream is not None:
            routing.console = ConsoleWriter(stream)
        root = logging.getLogger(ROOT_LOGGER_NAME)
        root.addHandler(ConsoleHandler(routing.console, routing.console_level))
        root.addHandler(StoreHandler(level=routing.store_level))
        root.addHandler(RootForwarder())
        root.setLevel(min(routing.console_level, routing.store_level))
        # Our handlers print run logs already; propagating to the root logger
        # would print every line twice in apps that configure logging themselves.
        # RootForwarder passes them to the root's other handlers (files, caplog).
        root.propagate = False
        _routing = routing
        return routing


def routing() -> LogRouting:
    """The configured routing (configuring defaults on first use)."""
    if _routing is not None:
        return _routing

    return setup_logging(load_settings())


def engine_line(
    sink: RecordSink,
    level: int,
    logger_name: str,
    label: str,
    message: str,
    flow_run_id: str | None,
    task_run_id: str | None,
    exc: BaseException | None = None,
    console: bool = True,
    at: _dt.datetime | None = None,
    store: bool = True,
) -> None:
    """Record one engine line (a state change) without the ``logging`` machinery.

    The engine writes at least one line per task run; building a
    ``logging.LogRecord`` and walking the stack for it would cost more than
    the rest of the task's bookkeeping.
    """
    route = _routing or routing()
    now = at or _dt.datetime.now(_UTC)
    if exc is not None:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = f"{message}\n{trace}".rstrip()
    if store and level >= route.store_level:
        sink.write_logs([LogRecord(flow_run_id, task_run_id, level, logger_name, message, now)])
    # task_state_lines=false silences routine state lines, never warnings or errors.
    wanted = route.state_lines or level >= logging.WARNING
    if console and wanted and level >= route.console_level:
        line = route.console.line(now.timestamp(), level, label, message)
        route.console.write(line, urgent=level >= logging.WARNING)
    if _root_logger.handlers:  # someone may listen (a log file, pytest's caplog)
        forward_line(level, logger_name, label, message, now, flow_run_id, task_run_id)


def flush_console() -> None:
    """Write any buffered console lines now (at the end of a flow run)."""
    if _routing is not None:
        _routing.console.flush()
