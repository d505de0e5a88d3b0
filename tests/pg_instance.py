"""A private PostgreSQL server that a test may stop and start at will.

Outage tests must not stop the machine's shared PostgreSQL (other tests use
it). This starts a fresh cluster of the same installed PostgreSQL in a
temporary directory, on a free 127.0.0.1 port with trust authentication, and
can stop it the way a crash or an administrator would (``-m immediate``: no
checkpoint, connections cut) and start it again on the same port.

PostgreSQL refuses to run as root, so when the tests run as root the cluster
belongs to the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable_reason() -> str | None:
    """Why a private server cannot be started here, or None if it can."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return "PostgreSQL's initdb is not installed"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as its own user"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresInstance:
    """One private cluster: :meth:`start`, :meth:`stop`, :attr:`url`."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        assert bin_dir is not None, unavailable_reason()
        self._bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self._bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        """Start (or restart) the server on its port; returns once it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` cuts every connection at once, as a crash does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        """Whether the server is up."""
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_instance() -> Iterator[PostgresInstance]:
    """A started private server, destroyed on exit."""
    instance = PostgresInstance()
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()
