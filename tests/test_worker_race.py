"""Three real worker processes racing over 300 quick runs: each run is executed exactly once.

The claim race itself is tested at the backend level (test_claim_race.py);
here it goes through ``sluice worker start`` processes and their flow
subprocesses, on SQLite and (with SLUICE_TEST_PG_URL) on PostgreSQL. Each
flow run appends its id to a shared file from inside its task, so a run
executed twice would show up twice.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.local import LocalBackend
from sluice.deployments.specs import DeploymentSpec
from sluice.schemas import WorkPoolRecord
from sluice.settings import Settings, StoreSettings
from sluice.states import StateType
from tests.deployment_backends import (  # noqa: F401 (the fixture)
    PG_URL,
    deployments_pg_url,
    empty_store,
)
from tests.worker_helpers import WorkerProcess, wait_for, write_project

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

RUNS = int(os.environ.get("SLUICE_TEST_RACE_RUNS", "300"))
WORKERS = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, sluice_home: Path) -> Iterator[Any]:
    store_settings = StoreSettings(lock_timeout=60.0)
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("SLUICE_TEST_PG_URL is not set")
        url = request.getfixturevalue("deployments_pg_url")
        backend = LocalBackend(Settings(home=sluice_home, database_url=url, store=store_settings))
        empty_store(backend)
        env = {"SLUICE_DATABASE_URL": url}
    else:
        backend = LocalBackend(Settings(home=sluice_home, store=store_settings))
        env = {}
    yield backend, env
    backend.close()


def test_three_workers_execute_each_of_300_runs_once(store: Any, tmp_path: Path) -> None:
    backend, env = store
    project = write_project(tmp_path / "project")
    backend.create_work_pool(WorkPoolRecord(name="race"))
    dep = DeploymentSpec(
        name="race", entrypoint="flows.py:record", working_dir=str(project),
        options={"work_pool_name": "race"},
    ).apply(backend)  # fmt: skip
    ids = [
        backend.create_flow_run_from_deployment(dep.id, {"folder": str(project), "tag": str(i)}).id
        for i in range(RUNS)
    ]
    workers = [
        WorkerProcess("race", tmp_path / f"w{i}.log", "--name", f"w{i}", "--limit-concurrency",
                      "4", env=env)
        for i in range(WORKERS)
    ]  # fmt: skip
    try:
        wait_for(
            lambda: backend.count_flow_runs(_completed_filter()) >= RUNS,
            800, f"{RUNS} runs to complete", poll=0.5,
        )  # fmt: skip
    finally:
        codes = [w.terminate() for w in workers]
    assert codes == [0] * WORKERS, [w.log() for w in workers]
    executions = Counter((project / "executions.log").read_text().split())
    assert set(executions) == set(ids)
    assert max(executions.values()) == 1, executions.most_common(3)
    runs = [backend.read_flow_run(i) for i in ids]
    assert all(r.run_count == 1 and r.state_type is StateType.COMPLETED for r in runs)
    by_worker = Counter(r.worker_name for r in runs)
    assert set(by_worker) <= {f"w{i}" for i in range(WORKERS)}
    assert len(by_worker) >= 2, by_worker  # they really raced


def _completed_filter() -> Any:
    from sluice.schemas import FlowRunFilter

    return FlowRunFilter(flow_name="record", state_types=[StateType.COMPLETED])
