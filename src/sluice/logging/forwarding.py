"""Run logs for the rest of the ``logging`` tree, without printing them twice.

The ``sluice`` logger does not propagate: Sluice prints run logs itself, and
a console handler on the root logger (``logging.basicConfig()``) would print
every line a second time. Every other handler still receives Sluice's
records, as propagation would give them: a log file on the root logger,
pytest's ``caplog`` (attached to the root logger, and by pytest to
non-propagating loggers too), a handler added to ``sluice.task_runs``.

Engine state lines ("Finished in state ...") skip ``logging`` on the hot
path (see :func:`sluice.logging.handlers.engine_line`); they are turned into
records only when the root logger has handlers at all.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sys
from collections.abc import Collection

#: the logger every Sluice run log goes through (``sluice.flow_runs``, ``sluice.task_runs``)
SLUICE_LOGGER_NAME = "sluice"


class RootForwarder(logging.Handler):
    """On the ``sluice`` logger: hand each record to the root logger's listeners."""

    def handle(self, record: logging.LogRecord) -> bool:
        already = logging.getLogger(SLUICE_LOGGER_NAME).handlers
        for handler in root_listeners(already):
            if record.levelno >= handler.level:
                handler.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # handle() does the work
        self.handle(record)


def root_listeners(already: Collection[logging.Handler] = ()) -> list[logging.Handler]:
    """The root logger's handlers that do not print to this process's console,
    leaving out those in ``already`` (they have seen the record)."""
    handlers = logging.root.handlers
    if not handlers:
        return []
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return [h for h in handlers if h not in already and not _prints_to(h, consoles)]


def _prints_to(handler: logging.Handler, consoles: tuple[object, ...]) -> bool:
    if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
        return False
    return any(handler.stream is console for console in consoles)


def line_listeners(logger_name: str) -> list[logging.Handler]:
    """Who would receive a record of ``logger_name`` besides Sluice's own handlers."""
    from sluice.logging.console import ConsoleHandler
    from sluice.logging.handlers import StoreHandler

    own = (ConsoleHandler, StoreHandler, RootForwarder)
    chain = [
        h
        for name in (logger_name, SLUICE_LOGGER_NAME)
        for h in logging.getLogger(name).handlers
        if not isinstance(h, own)
    ]
    return chain + root_listeners(chain)


def forward_line(
    level: int,
    logger_name: str,
    label: str,
    message: str,
    at: _dt.datetime,
    flow_run_id: str | None,
    task_run_id: str | None,
) -> None:
    """An engine line as a ``logging`` record, for whoever listens besides Sluice."""
    logger = logging.getLogger(logger_name)
    if not logger.isEnabledFor(level):
        return
    listeners = line_listeners(logger_name)
    if not listeners:
        return
    record = logging.LogRecord(logger_name, level, __file__, 0, message, None, None)
    record.created = at.timestamp()
    record.msecs = (record.created % 1) * 1000
    record.run_label = label
    record.flow_run_id = flow_run_id
    record.task_run_id = task_run_id
    for handler in listeners:
        if level >= handler.level:
            handler.handle(record)
