"""``sluice_test_harness``: run a block against a throwaway Sluice home and database."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sluice.backend.factory import close_backends

#: settings that would send a harnessed run somewhere else than its temporary store
_REDIRECTING = ("SLUICE_API_URL", "SLUICE_DATABASE_URL")


@contextlib.contextmanager
def sluice_test_harness(
    home: str | os.PathLike[str] | None = None, server_startup_timeout: int | None = 30
) -> Iterator[Path]:
    """Run the block against a temporary Sluice home and database.

    Every flow and task run inside the block is recorded in a fresh SQLite
    store under a temporary folder (or ``home``), which is removed afterwards
    (``home`` is kept). ``SLUICE_API_URL`` and ``SLUICE_DATABASE_URL`` are
    unset inside the block, so a test never writes to a real server or
    database; the previous environment is restored on exit.

    Args:
        home: the folder to use instead of a temporary one.
        server_startup_timeout: accepted for Prefect's signature and ignored:
            the harness starts no server (the embedded store needs none).

    Example::

        @pytest.fixture(autouse=True, scope="session")
        def sluice_test_fixture():
            with sluice_test_harness():
                yield
    """
    saved = {name: os.environ.get(name) for name in ("SLUICE_HOME", *_REDIRECTING)}
    with contextlib.ExitStack() as stack:
        if home is None:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="sluice-test-"))
        os.environ["SLUICE_HOME"] = str(home)
        for name in _REDIRECTING:
            os.environ.pop(name, None)
        try:
            yield Path(home)
        finally:
            close_backends()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
