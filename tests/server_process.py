"""A real Sluice server in a subprocess, on 127.0.0.1, for client-mode tests and benches.

Started with ``python -m sluice server start``; its output goes to a file in
its home folder (no pipes to drain or leave open).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

#: how long a server may take to answer /api/health after being started
START_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server process: no inherited SLUICE_* settings, its own home.

    Crash detection is pushed far out (``SLUICE_HEARTBEAT_TIMEOUT``): tests write
    Running runs with old timestamps on purpose, which a server service must not touch.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(home)
    env["SLUICE_HEARTBEAT_TIMEOUT"] = str(10.0 * 365 * 24 * 3600)
    env.update(extra or {})
    return env


class ServerProcess:
    """One ``sluice server start`` process; :meth:`start` again after :meth:`kill` restarts
    it on the same port and database."""

    def __init__(
        self, home: Path, port: int | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = server_environment(home, env)
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"

    def start(self) -> None:
        """Start the server and wait until /api/health answers.

        Raises:
            RuntimeError: it exited or did not become healthy in time (its log included).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "sluice", "server", "start"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"The server exited at start:\n{self.log()}")
            if self.healthy():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"The server did not become healthy in {START_TIMEOUT} s:\n{self.log()}")

    def healthy(self) -> bool:
        """True when GET /api/health answers 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=1.0) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash or a hard restart would."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM), killing it if it does not exit in 10 s."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""
