"""The seeds' Prefect commands with ``prefect`` replaced by ``sluice``, through the real
console script: pools, deploy (by entrypoint and by a flow's name), run, worker, listings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.states import StateType

pytestmark = pytest.mark.integration

SLUICE = Path(sys.executable).with_name("sluice")

EXAMPLE_FLOW = """
from sluice import flow, task


@task(retries=2)
def dbt_run(select: str) -> str:
    return f"ran {select}"


@flow
def dbt_pipeline(select: str = "all") -> str:
    return dbt_run(select)


@flow(name="seeknal-run-pipeline")
def seeknal_run_pipeline(project_path: str = ".", parallel: bool = False) -> str:
    return f"{project_path} {parallel}"


@flow(name="my-flow")
def my_flow() -> int:
    return 1
"""


def sluice(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(SLUICE), *args], cwd=cwd, capture_output=True, text=True,
        env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def test_seed_commands(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "example_flow.py").write_text(EXAMPLE_FLOW)
    # seed 003: pools and workers
    sluice(tmp_path, "work-pool", "create", "my-pool")
    assert "my-pool" in sluice(tmp_path, "work-pool", "ls")
    # seed 004: deploy by entrypoint with a cron schedule
    sluice(tmp_path, "deploy", "flows/example_flow.py:dbt_pipeline",
           "--name", "dbt-pipeline-daily", "--cron", "0 6 * * *", "--pool", "my-pool")  # fmt: skip
    # seed 002: deploy a flow by its name (it ran here before), shell-style parameters
    sluice(tmp_path, "run", "flows/example_flow.py:seeknal_run_pipeline")
    sluice(tmp_path, "deploy", "seeknal-run-pipeline", "--name", "my-deployment",
           "--param", "project_path=/path/to/project", "--param", "parallel=True",
           "--pool", "my-pool")  # fmt: skip
    sluice(tmp_path, "deploy", "flows/example_flow.py:my_flow", "--name", "prod",
           "--pool", "my-pool")  # fmt: skip
    listing = json.loads(sluice(tmp_path, "deployment", "ls", "-o", "json"))
    assert sorted(f"{d['flow_name']}/{d['name']}" for d in listing) == [
        "dbt_pipeline/dbt-pipeline-daily", "my-flow/prod", "seeknal-run-pipeline/my-deployment",
    ]  # fmt: skip
    # seed 003: run a deployment, start a worker on the pool
    sluice(tmp_path, "deployment", "run", "my-flow/prod")
    sluice(tmp_path, "deployment", "run", "seeknal-run-pipeline/my-deployment")
    sluice(tmp_path, "worker", "start", "--pool", "my-pool", "--run-once",
           "--limit-concurrency", "2")  # fmt: skip
    backend = get_backend()
    try:
        runs = backend.list_deployment_runs("seeknal-run-pipeline/my-deployment", limit=0)  # type: ignore[attr-defined]
        assert [r.state_type for r in runs] == [StateType.COMPLETED]
        assert runs[0].parameters == {"project_path": "/path/to/project", "parallel": True}
        prod = backend.list_deployment_runs("my-flow/prod", limit=0)  # type: ignore[attr-defined]
        assert [r.state_type for r in prod] == [StateType.COMPLETED]
    finally:
        close_backends()
    assert "default" in sluice(tmp_path, "work-queue", "inspect", "--pool", "my-pool")
    assert "my-flow" in sluice(tmp_path, "flow", "ls")
    assert "my-flow" in sluice(tmp_path, "flow-run", "ls", "--flow-name", "my-flow")


def sluice_fails(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(SLUICE), *args], cwd=cwd, capture_output=True, text=True,
        env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, (args, done.stdout, done.stderr)
    return done.stderr + done.stdout


def test_seed_run_by_flow_name_and_flow_run_create(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "example_flow.py").write_text(EXAMPLE_FLOW)
    # seed 002: `prefect run seeknal-run-pipeline`: unknown until it ran (or was deployed)
    assert "not found" in sluice_fails(tmp_path, "run", "seeknal-run-pipeline")
    sluice(tmp_path, "run", "flows/example_flow.py:seeknal_run_pipeline")
    again = sluice(tmp_path, "run", "seeknal-run-pipeline", "--param", "project_path=/p")
    assert "finished in state Completed" in again
    # seed 003: `prefect flow-run create --flow-name my-flow` makes a run of its deployment
    sluice(tmp_path, "run", "flows/example_flow.py:my_flow")
    assert "has no deployment" in sluice_fails(
        tmp_path, "flow-run", "create", "--flow-name", "my-flow"
    )
    sluice(tmp_path, "deploy", "flows/example_flow.py:my_flow", "--name", "prod")
    created = sluice(tmp_path, "flow-run", "create", "--flow-name", "my-flow")
    assert "of my-flow/prod" in created
    sluice(tmp_path, "deploy", "flows/example_flow.py:my_flow", "--name", "dev")
    refused = sluice_fails(tmp_path, "flow-run", "create", "--flow-name", "my-flow")
    assert "2 deployments (dev, prod)" in refused
    sluice(tmp_path, "flow-run", "create", "--flow-name", "my-flow", "--deployment", "dev")
    backend = get_backend()
    try:
        for name in ("my-flow/prod", "my-flow/dev"):
            runs = backend.list_deployment_runs(name, limit=0)  # type: ignore[attr-defined]
            assert [r.state_type for r in runs] == [StateType.SCHEDULED]
    finally:
        close_backends()


SEED_003_SYNC_FLOW = """
from sluice import flow, task
from sluice.deployments import Deployment
from sluice.server.schemas.schedules import CronSchedule

@task
def sync_databases():
    # Sync logic here
    pass

@flow
def daily_sync():
    sync_databases()

deployment = Deployment.build_from_flow(
    flow=daily_sync,
    name="daily-database-sync",
    schedule=CronSchedule(cron="0 2 * * *"),  # 2 AM daily
)
deployment.apply()
"""


def test_seed_003_deployment_build_from_flow_apply(tmp_path: Path) -> None:
    (tmp_path / "sync_flow.py").write_text(SEED_003_SYNC_FLOW)
    done = subprocess.run(
        [sys.executable, "sync_flow.py"], cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (listed,) = json.loads(sluice(tmp_path, "deployment", "ls", "-o", "json"))
    assert f"{listed['flow_name']}/{listed['name']}" == "daily_sync/daily-database-sync"
    assert listed["schedules"] == [
        {"kind": "cron", "cron": "0 2 * * *", "timezone": "UTC", "day_or": True}
    ]
    assert listed["entrypoint"].endswith("sync_flow.py:daily_sync")
