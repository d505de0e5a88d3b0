"""``flow_run_name`` (a template of the parameters, or a callable reading
``sluice.runtime``) names direct calls and deployment runs alike, as in Prefect."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice import flow, runtime
from sluice.backend.factory import get_backend
from sluice.deployments.specs import DeploymentSpec
from tests.helpers import only_flow_run
from tests.worker_helpers import worker_env

FLOWS = textwrap.dedent(
    """
    from sluice import flow, runtime


    def name_from_runtime() -> str:
        parameters = runtime.flow_run.parameters
        return f"{runtime.flow_run.flow_name}-for-{parameters['city']}"


    @flow(flow_run_name="forecast-{city}-{days}d")
    def forecast(city: str, days: int = 3) -> str:
        return city


    @flow(flow_run_name=name_from_runtime)
    def report(city: str) -> str:
        return runtime.flow_run.name
    """
)


def test_a_callable_name_reads_the_runs_parameters_on_a_direct_call() -> None:
    def from_runtime() -> str:
        return f"{runtime.flow_run.flow_name}-{runtime.flow_run.parameters['city']}"

    @flow(flow_run_name=from_runtime)
    def weather(city: str) -> str:
        return str(runtime.flow_run.name)

    assert weather("Oslo") == "weather-Oslo"
    assert only_flow_run("weather").name == "weather-Oslo"


def _execute(run_id: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sluice.workers.execute", run_id],
        cwd=cwd,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.integration
def test_deployment_runs_are_named_by_the_flows_flow_run_name(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    backend = get_backend()
    for function in ("forecast", "report"):
        DeploymentSpec(
            name="nightly",
            entrypoint=f"flows.py:{function}",
            working_dir=str(tmp_path),
            options={"parameters": {"city": "Lyon"}},
        ).apply()
    templated = backend.create_flow_run_from_deployment("forecast/nightly", {"days": 5})
    called = backend.create_flow_run_from_deployment("report/nightly")
    chosen = backend.create_flow_run_from_deployment("forecast/nightly", name="picked-by-hand")
    for run in (templated, called, chosen):
        _execute(run.id, tmp_path)
    assert backend.read_flow_run(templated.id).name == "forecast-Lyon-5d"
    assert backend.read_flow_run(called.id).name == "report-for-Lyon"
    # A name chosen when the run was created (run_deployment(flow_run_name=...)) stays.
    assert backend.read_flow_run(chosen.id).name == "picked-by-hand"
