"""Console output for run logs, buffered so that printing costs no syscall per line.

Engine state lines (one or more per task) and ``get_run_logger()`` records
both go through the one :class:`ConsoleWriter`, so their order is kept. Lines
at WARNING and above are written at once; others are held for at most
``interval`` seconds (or until ``max_lines`` collect) and written together.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections import deque
from typing import TextIO

#: the usual levels' names, padded as a line shows them
_LEVEL_NAMES = {
    level: f"{logging.getLevelName(level):<7}"
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
}


#: ``.mmm`` for every millisecond: cheaper than formatting the number per line
_MILLISECONDS = tuple(f".{ms:03d}" for ms in range(1000))


class ConsoleWriter:
    """Buffered, thread-safe line writer to a stream (stderr by default)."""

    def __init__(
        self, stream: TextIO | None = None, interval: float = 0.2, max_lines: int = 500
    ) -> None:
        self._stream = stream
        self._interval = interval
        self._max_lines = max_lines
        # A deque: appending to it is atomic, so write() takes no lock.
        self._lines: deque[str] = deque()
        #: held while flushing, so that concurrent flushes keep lines in order
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        #: (epoch second, its ``HH:MM:SS``) of the last line
        self._clock: tuple[int, str] = (-1, "")

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def timestamp(self, created: float) -> str:
        """``HH:MM:SS.mmm`` in local time (strftime once per second, not per line)."""
        second = int(created)
        clock = self._clock
        if clock[0] != second:
            # One tuple, replaced whole: threads never pair a second with another's text.
            clock = self._clock = (second, time.strftime("%H:%M:%S", time.localtime(second)))
        # (% 1000: a fraction a hair below 1 can round up to 1000 ms)
        return clock[1] + _MILLISECONDS[int((created - second) * 1000) % 1000]

    def line(self, created: float, level: int, label: str | None, message: str) -> str:
        level_name = _LEVEL_NAMES.get(level) or f"{logging.getLevelName(level):<7}"
        if label:
            return f"{self.timestamp(created)} | {level_name} | {label} - {message}"
        return f"{self.timestamp(created)} | {level_name} | {message}"

    def write(self, line: str, urgent: bool = False) -> None:
        """Queue ``line``; ``urgent`` lines (warnings, errors) are written at once."""
        lines = self._lines
        lines.append(line)
        if urgent or len(lines) >= self._max_lines:
            self.flush()
        elif self._flusher is None:
            self._start_flusher()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._lock:
            queued = self._lines
            lines = [queued.popleft() for _ in range(len(queued))]
            if not lines:
                return
            stream = self.stream
            try:
                stream.write("\n".join(lines) + "\n")
                stream.flush()
            except (OSError, ValueError):
                # A closed or broken stream (pipe gone, test capture ended) must not
                # fail a run: console lines are a courtesy, the store keeps the logs.
                pass

    def _start_flusher(self) -> None:
        with self._start_lock:
            if self._flusher is not None:
                return
            self._flusher = threading.Thread(
                target=self._flush_periodically, name="sluice-console", daemon=True
            )
        self._flusher.start()
        atexit.register(self.flush)

    def _flush_periodically(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self.flush()


class ConsoleHandler(logging.Handler):
    """A logging handler that writes through a :class:`ConsoleWriter`."""

    def __init__(self, writer: ConsoleWriter, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            line = self.writer.line(
                record.created, record.levelno, getattr(record, "run_label", None), message
            )
            self.writer.write(line, urgent=record.levelno >= logging.WARNING)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.writer.flush()
