"""``sluice flow ls|inspect`` over records in a real embedded store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from sluice.backend.factory import close_backends, get_backend
from sluice.cli.main import app
from tests import cli_data
from tests.cli_data import RUN_FAILED, RUN_OK

runner = CliRunner()


@pytest.fixture(autouse=True)
def closed_backends() -> Iterator[None]:
    yield
    close_backends()


@pytest.fixture
def data() -> cli_data.Dataset:
    return cli_data.build(get_backend())


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


@pytest.mark.usefixtures("data")
def test_flow_ls_table() -> None:
    lines = invoke("flow", "ls").splitlines()
    assert lines[0].split() == ["name", "created", "runs", "last", "run", "last", "state"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"etl_pipeline", "report"}
    assert rows["etl_pipeline"][3] == "2"
    assert rows["etl_pipeline"][-1] == "Failed"  # the newest run's state
    assert rows["report"][3:4] == ["1"] and rows["report"][-1] == "Running"


@pytest.mark.usefixtures("data")
def test_flow_ls_json() -> None:
    flows = {f["name"]: f for f in json.loads(invoke("flow", "ls", "--output", "json"))}
    etl = flows["etl_pipeline"]
    assert etl["run_count"] == 2
    assert etl["description"] == "Nightly ETL"
    assert etl["last_run"]["id"] == RUN_FAILED
    assert etl["last_run"]["state_type"] == "FAILED"


@pytest.mark.usefixtures("data")
@pytest.mark.parametrize("name", ["etl_pipeline", "etl-pipeline"])
def test_flow_inspect_table(name: str) -> None:
    out = invoke("flow", "inspect", name)
    assert "Flow etl_pipeline" in out
    assert "Nightly ETL" in out and "1.2" in out
    assert "2 (1 completed, 1 failed)" in out
    assert "Recent runs" in out
    assert out.index(RUN_FAILED) < out.index(RUN_OK)  # newest first


@pytest.mark.usefixtures("data")
def test_flow_inspect_json() -> None:
    data = json.loads(invoke("flow", "inspect", "etl-pipeline", "-o", "json"))
    assert data["name"] == "etl_pipeline"
    assert data["run_count"] == 2
    assert data["runs_by_state"] == {"COMPLETED": 1, "FAILED": 1}
    assert [r["id"] for r in data["recent_runs"]] == [RUN_FAILED, RUN_OK]


@pytest.mark.usefixtures("data")
def test_flow_inspect_unknown() -> None:
    assert invoke("flow", "inspect", "nope", code=1) == "Error: flow 'nope' not found\n"


def test_empty_store() -> None:
    assert invoke("flow", "ls").strip() == "No flows recorded yet."
    assert json.loads(invoke("flow", "ls", "-o", "json")) == []
    assert invoke("flow-run", "ls").strip() == "No flow runs match."
    assert json.loads(invoke("flow-run", "ls", "-o", "json")) == []
