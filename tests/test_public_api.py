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


#: the Prefect-named modules and the names their ``__all__`` exports
PREFECT_NAMED_MODULES = {
    "sluice.cache_policies": [
        "DEFAULT", "FLOW_PARAMETERS", "INPUTS", "NONE", "NO_CACHE", "RUN_ID", "TASK_SOURCE",
        "CacheContext", "CacheKeyFnPolicy", "CachePolicy", "CompoundCachePolicy",
        "CompoundPolicy", "FlowParameters", "Inputs", "NoCache", "RunId", "TaskSource",
        "excluded", "resolve_policy", "task_input_hash",
    ],
    "sluice.client.schemas": [
        "Deployment", "Flow", "FlowRun", "Log", "State", "StateType", "TaskRun", "WorkPool",
        "WorkQueue", "Worker",
    ],
    "sluice.client.schemas.objects": [
        "Deployment", "Flow", "FlowRun", "Log", "State", "StateType", "TaskRun", "WorkPool",
        "WorkQueue", "Worker",
    ],
    "sluice.client.schemas.schedules": ["CronSchedule", "IntervalSchedule", "RRuleSchedule"],
    "sluice.schedules": ["Cron", "Interval", "RRule", "Schedule"],
    "sluice.tasks": ["Task", "exponential_backoff", "task", "task_input_hash"],
    "sluice.testing": ["sluice_test_harness"],
    "sluice.transactions": [
        "CommitMode", "IsolationLevel", "Transaction", "TransactionState", "get_transaction",
        "transaction",
    ],
    "sluice.utilities.annotations": [
        "BaseAnnotation", "NotSet", "allow_failure", "opaque", "quote", "unmapped",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(PREFECT_NAMED_MODULES))
def test_prefect_named_modules_export_pinned_names(module_name: str) -> None:
    import importlib

    module = importlib.import_module(module_name)
    assert module.__all__ == PREFECT_NAMED_MODULES[module_name]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_prefect_import_paths_name_the_same_objects() -> None:
    from sluice.client.schemas.objects import FlowRun, State, TaskRun
    from sluice.schemas import FlowRunRecord, TaskRunRecord
    from sluice.testing import sluice_test_harness
    from sluice.testing.utilities import sluice_test_harness as harness
    from sluice.utilities.annotations import allow_failure, unmapped

    assert (TaskRun, FlowRun, State) == (TaskRunRecord, FlowRunRecord, sluice.State)
    assert harness is sluice_test_harness
    assert (allow_failure, unmapped) == (sluice.allow_failure, sluice.unmapped)


def test_import_sluice_loads_nothing_heavy_and_touches_no_files(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        import sluice, sluice.task_runners, sluice.futures, sluice.states
        import sluice.cache_policies, sluice.client.schemas.objects, sluice.schedules
        import sluice.testing.utilities, sluice.transactions, sluice.utilities.annotations
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
