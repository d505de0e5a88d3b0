"""The public surface: exported names are pinned, importing is light, types flow through."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sluice


def test_exported_names_are_pinned() -> None:
    assert sluice.__all__ == [
        "Flow",
        "State",
        "Task",
        "__version__",
        "allow_failure",
        "flow",
        "get_run_context",
        "get_run_logger",
        "resume_flow_run",
        "serve",
        "tags",
        "task",
        "unmapped",
    ]
    for name in sluice.__all__:
        assert hasattr(sluice, name), name


def test_submodule_names_the_seeds_import() -> None:
    from sluice.futures import as_completed, wait  # noqa: F401
    from sluice.states import Cancelled, Completed, Crashed, Failed, Pending  # noqa: F401
    from sluice.task_runners import (  # noqa: F401
        ConcurrentTaskRunner,
        ProcessPoolTaskRunner,
        ThreadPoolTaskRunner,
    )
    from sluice.testing import sluice_test_harness  # noqa: F401


def test_import_sluice_loads_nothing_heavy_and_touches_no_files(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        import sluice, sluice.task_runners, sluice.futures, sluice.states
        heavy = ("sqlalchemy", "alembic", "pydantic", "typer", "rich", "cloudpickle", "dask",
                 "fastapi", "httpx", "psycopg")
        print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
        print(os.path.exists(os.environ["SLUICE_HOME"]))
        """
    )
    home = tmp_path / "home"
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={"SLUICE_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == ["", "False"]


@pytest.mark.integration
def test_decorators_keep_signatures_for_type_checkers(tmp_path: Path) -> None:
    sample = tmp_path / "typed_usage.py"
    sample.write_text(
        textwrap.dedent(
            """
            from sluice import flow, task
            from sluice.futures import SluiceFuture

            @task(retries=2)
            def add(x: int, y: int) -> int:
                return x + y

            @flow
            def total(n: int) -> int:
                future: SluiceFuture[int] = add.submit(1, 2)
                return add(n, future.result())

            reveal_type(add)
            reveal_type(total)
            total("not an int")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--hide-error-context", str(sample)],
        capture_output=True,
        text=True,
    )
    out = result.stdout
    assert "sluice.tasks.Task[[x: int, y: int], int]" in out
    assert "sluice.flows.Flow[[n: int], int]" in out
    assert 'Argument 1 to "__call__" of "Flow" has incompatible type "str"' in out
    assert out.count("error:") == 1, out
