"""Helpers for testing code that uses Sluice."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def sluice_test_harness(home: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Run the block against a temporary Sluice home and database.

    Every flow and task run inside the block is recorded in a fresh SQLite
    store under a temporary folder (or ``home``), which is removed afterwards.
    The previous ``SLUICE_HOME`` is restored on exit.

    Example::

        def test_my_flow():
            with sluice_test_harness():
                assert my_flow(3) == 9
    """
    from sluice.backend.factory import close_backends

    previous = os.environ.get("SLUICE_HOME")
    with contextlib.ExitStack() as stack:
        if home is None:
            home = stack.enter_context(tempfile.TemporaryDirectory(prefix="sluice-test-"))
        os.environ["SLUICE_HOME"] = str(home)
        try:
            yield Path(home)
        finally:
            close_backends()
            if previous is None:
                os.environ.pop("SLUICE_HOME", None)
            else:
                os.environ["SLUICE_HOME"] = previous
