"""One flow run's subprocess: launch it, ask it to cancel, stop it, see how it ended."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.job_variables import process_environment
from sluice.workers.payload import CANCEL_LINE, CONTROL_ENV, RunPayload, encode_payload

#: the command a worker runs per flow run (the run id is appended)
EXECUTE_COMMAND = (sys.executable, "-m", "sluice.workers.execute")


@dataclass
class FlowRunProcess:
    """A running ``python -m sluice.workers.execute RUN_ID`` subprocess.

    Attributes:
        run_id: the flow run it executes.
        popen: the subprocess.
        started: ``time.monotonic()`` at launch.
        cancelling: a cancellation was sent (the run should end Cancelled).
        stop_deadline: when an unanswered SIGTERM becomes a SIGKILL (monotonic).
        unsettled_since: when recording how it ended first failed (the store
            was away; monotonic), None until then.
    """

    run_id: str
    popen: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    cancelling: bool = False
    handing_back: bool = False
    stop_deadline: float | None = None
    unsettled_since: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """The exit status once the process ended (negative: killed by that signal)."""
        return self.popen.poll()

    def terminate(self, grace: float, *, cancel: bool) -> None:
        """SIGTERM now (a cancellation if ``cancel``), SIGKILL once ``grace`` s pass."""
        if self.exit_code() is not None or self.stop_deadline is not None:
            return
        if cancel:
            self.cancelling = True
            self._say(CANCEL_LINE)
        try:
            self.popen.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return
        self.stop_deadline = time.monotonic() + grace

    def kill_if_overdue(self, now: float) -> None:
        """SIGKILL a process that ignored its SIGTERM past the grace period."""
        overdue = self.stop_deadline is not None and now >= self.stop_deadline
        if overdue and self.exit_code() is None:
            self.popen.kill()

    def close(self) -> None:
        """Release the pipe (after the process ended)."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()

    def _say(self, line: bytes) -> None:
        stdin = self.popen.stdin
        if stdin is None:
            return
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


def _spawn(
    argument: str, cwd: str | None, job_variables: Mapping[str, Any] | None = None
) -> subprocess.Popen[bytes]:
    env = process_environment(os.environ, job_variables or {})
    env[CONTROL_ENV] = "stdin"
    return subprocess.Popen(
        [*EXECUTE_COMMAND, argument],
        stdin=subprocess.PIPE,
        cwd=cwd,
        env=env,
        # Its own process group: a Ctrl-C in the worker's terminal reaches the
        # worker, which decides what happens to its runs.
        start_new_session=True,
    )


def launch(payload: RunPayload, spare: subprocess.Popen[bytes] | None = None) -> FlowRunProcess:
    """Start executing ``payload.run``: in ``spare`` (a warmed-up process, see
    :func:`spawn_spare`) when given and alive, else in a new subprocess started in
    the deployment's working directory when it exists (the subprocess fails the
    run if it does not; a spare changes into it itself) with the run's ``env``
    job variables applied (a spare has the worker's environment: the caller
    passes none for a run with ``env``)."""
    if spare is None or spare.poll() is not None:
        folder = payload.working_dir
        cwd = folder if folder and os.path.isdir(folder) else None
        spare = _spawn(payload.run.id, cwd, payload.run.job_variables)
    process = FlowRunProcess(payload.run.id, spare)
    process._say(encode_payload(payload))
    return process


def spawn_spare() -> subprocess.Popen[bytes]:
    """A process that imports Sluice and opens the store now, then waits for a run on stdin."""
    return _spawn("--warm", None)


def retire_spare(spare: subprocess.Popen[bytes]) -> None:
    """Let an unused spare go: closing its stdin makes it exit."""
    with contextlib.suppress(OSError):
        if spare.stdin is not None:
            spare.stdin.close()
    try:
        spare.wait(5)
    except subprocess.TimeoutExpired:
        spare.kill()
        spare.wait()


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
