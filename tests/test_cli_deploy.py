"""``sluice deploy``, ``deployment``, ``work-pool``, ``work-queue``: in-process through Typer,
on the test's embedded store. Bad input is one line on stderr, exit 1, and creates nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sluice.backend.factory import close_backends, get_backend
from sluice.cli.main import app
from sluice.states import StateType
from tests.worker_helpers import write_project

runner = CliRunner()

YAML = """
deployments:
  - name: morning
    entrypoint: flows.py:hello
    cron: "0 6 * * *"
    timezone: Europe/London
    parameters: {n: 5}
    work_pool: {name: etl, work_queue_name: default}
    tags: [nightly]
  - name: every-hour
    entrypoint: flows.py:hello
    interval: 1h
    work_pool: etl
"""


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = write_project(tmp_path / "project")
    monkeypatch.chdir(folder)
    yield folder
    close_backends()


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(*args: str) -> Result:
    result = cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


def one_line_error(*args: str, contains: str) -> str:
    result = cli(*args)
    assert result.exit_code == 1, (args, result.output)
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert contains in result.stderr, result.stderr
    return result.stderr


def deployments() -> list[Any]:
    return list(get_backend().list_deployments(limit=0))  # type: ignore[attr-defined]


def test_deploy_with_flags_then_redeploy_replaces_the_schedule(project: Path) -> None:
    ok("deploy", "flows.py:record", "--name", "daily", "--cron", "0 6 * * *",
       "--timezone", "Europe/London", "--pool", "etl", "--param", "folder=/data",
       "--tag", "a", "--tag", "b", "--description", "d", "--version", "7",
       "--concurrency-limit", "2")  # fmt: skip
    (dep,) = deployments()
    assert dep.full_name == "record/daily" and dep.work_pool_name == "etl"
    assert dep.schedules[0]["cron"] == "0 6 * * *"
    assert dep.schedules[0]["timezone"] == "Europe/London"
    assert dep.parameters == {"folder": "/data"} and dep.tags == ["a", "b"]
    assert (dep.version, dep.description, dep.concurrency_limit) == ("7", "d", 2)
    assert dep.working_dir == str(project) and dep.entrypoint == "flows.py:record"
    ok("deploy", "flows.py:record", "--name", "daily", "--interval", "3600", "--param",
       "folder=/x", "--pool", "etl")  # fmt: skip
    (again,) = deployments()
    assert again.id == dep.id and [s["kind"] for s in again.schedules] == ["interval"]
    listed = json.loads(ok("deployment", "ls", "-o", "json").stdout)
    assert [d["name"] for d in listed] == ["daily"]
    shown = json.loads(ok("deployment", "inspect", "record/daily", "-o", "json").stdout)
    assert shown["deployment"]["id"] == dep.id


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["--cron", "0 6 * *"], "cron"),
        (["--cron", "61 * * * *"], "61"),
        (["--cron", "0 6 * * *", "--timezone", "Mars/Olympus"], "Mars/Olympus"),
        (["--interval", "soon"], "soon"),
        (["--cron", "0 6 * * *", "--interval", "60"], "exactly one"),
        (["--param", "n=abc"], "n"),
        (["--param", "nonsense"], "key=value"),
        (["--param", "zzz=1"], "zzz"),
    ],
)
def test_bad_deploy_input_is_one_line_and_creates_nothing(args: list[str], contains: str) -> None:
    one_line_error("deploy", "flows.py:hello", "--name", "bad", *args, contains=contains)
    assert deployments() == []


def test_bad_entrypoints_are_one_line_errors() -> None:
    one_line_error("deploy", "flows.py:nothing", "--name", "x", contains="nothing")
    one_line_error("deploy", "missing.py:f", "--name", "x", contains="not found")
    one_line_error("deploy", "broken.py:f", "--name", "x", contains="this_module_does_not_exist")
    one_line_error("deploy", "never-run-flow", "--name", "x", contains="not found")
    one_line_error("deploy", "flows.py:hello", contains="--name")
    assert deployments() == []


def test_deployment_run_validates_parameters_and_names() -> None:
    ok("deploy", "flows.py:hello", "--name", "dev")
    one_line_error("deployment", "run", "hello/dev", "--param", "n=abc", contains="n")
    one_line_error("deployment", "run", "hello/nope", contains="not found")
    one_line_error("deployment", "inspect", "nope/nope", contains="not found")
    assert get_backend().list_deployment_runs("hello/dev", limit=0) == []  # type: ignore[attr-defined]
    created = json.loads(
        ok("deployment", "run", "hello/dev", "--param", "n=3", "-o", "json").stdout
    )
    assert created["parameters"] == {"n": 3} and created["state_type"] == "SCHEDULED"


def test_pause_resume_delete() -> None:
    ok("deploy", "flows.py:hello", "--name", "dev", "--cron", "0 6 * * *")
    ok("deployment", "pause", "hello/dev")
    assert deployments()[0].paused
    ok("deployment", "resume", "hello/dev")
    assert not deployments()[0].paused
    ok("deployment", "delete", "hello/dev")
    assert deployments() == []
    one_line_error("deployment", "delete", "hello/dev", contains="not found")


def test_project_file_all_and_by_name(project: Path) -> None:
    (project / "sluice.yaml").write_text(YAML)
    ok("deploy", "--name", "every-hour")
    assert [d.name for d in deployments()] == ["every-hour"]
    ok("deploy", "--all")
    deps = {d.name: d for d in deployments()}
    assert set(deps) == {"morning", "every-hour"}
    morning = deps["morning"]
    assert morning.parameters == {"n": 5} and morning.work_pool_name == "etl"
    assert morning.schedules[0]["timezone"] == "Europe/London" and morning.tags == ["nightly"]
    one_line_error("deploy", "--name", "nope", contains="no deployment named 'nope'")


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("deployments:\n  - name: x\n    entrypoint: flows.py:hello\n    color: red\n", "color"),
        ("deployments:\n  - name: x\n", "entrypoint"),
        ("deployments: [\n", "cannot read"),
        ("deployments:\n  - name: x\n    entrypoint: flows.py:hello\n    cron: '0 99 * * *'\n",
         "99"),
        ("deployments:\n  - name: x\n    entrypoint: flows.py:hello\n"
         "  - name: y\n    entrypoint: flows.py:nothing\n", "nothing"),
    ],
)  # fmt: skip
def test_bad_project_files_create_nothing(project: Path, text: str, contains: str) -> None:
    (project / "sluice.yaml").write_text(text)
    one_line_error("deploy", "--all", contains=contains)
    assert deployments() == []


def test_work_pools_and_queues() -> None:
    ok("work-pool", "create", "etl", "--concurrency-limit", "3")
    one_line_error("work-pool", "create", "etl", contains="etl")
    one_line_error("work-pool", "create", "k8", "--type", "kubernetes", contains="kubernetes")
    pools = json.loads(ok("work-pool", "ls", "-o", "json").stdout)
    assert [(p["name"], p["concurrency_limit"]) for p in pools] == [("etl", 3)]
    ok("work-queue", "create", "urgent", "--pool", "etl", "--priority", "1")
    ok("work-queue", "create", "bulk", "--pool", "etl", "--priority", "5")
    queues = json.loads(ok("work-queue", "ls", "--pool", "etl", "-o", "json").stdout)
    assert [q["name"] for q in queues][-1] == "bulk"
    shown = json.loads(ok("work-queue", "inspect", "urgent", "--pool", "etl", "-o", "json").stdout)
    assert shown["priority"] == 1
    ok("work-pool", "pause", "etl")
    inspected = json.loads(ok("work-pool", "inspect", "etl", "-o", "json").stdout)
    assert inspected["work_pool"]["paused"] is True
    assert {q["name"] for q in inspected["queues"]} == {"default", "urgent", "bulk"}
    ok("work-pool", "resume", "etl")
    one_line_error("work-queue", "create", "x", "--pool", "nope", contains="nope")
    ok("work-pool", "delete", "etl")
    one_line_error("work-pool", "inspect", "etl", contains="not found")


def test_backfill_no_wait_creates_each_tick_once() -> None:
    ok("deploy", "flows.py:hello", "--name", "daily", "--cron", "0 6 * * *")
    out = ok("deployment", "backfill", "hello/daily", "--start", "2024-01-01", "--end",
             "2024-01-31", "--no-wait").stdout  # fmt: skip
    assert "31 ticks, 31 runs created" in out
    again = ok("deployment", "backfill", "hello/daily", "--start", "2024-01-01", "--end",
               "2024-01-31", "--no-wait").stdout  # fmt: skip
    assert "31 ticks, 0 runs created" in again
    hourly = ok("deployment", "backfill", "hello/daily", "--start", "2024-02-01", "--end",
                "2024-02-01T05:00:00+00:00", "--interval", "3600", "--no-wait").stdout  # fmt: skip
    assert "6 ticks, 6 runs created" in hourly
    one_line_error("deployment", "backfill", "hello/daily", "--start", "someday", "--end",
                   "2024-01-02", "--no-wait", contains="someday")  # fmt: skip
    one_line_error("deployment", "backfill", "hello/daily", "--start", "2024-01-02", "--end",
                   "2024-01-01", "--no-wait", contains="before")  # fmt: skip
    runs = get_backend().list_deployment_runs("hello/daily", limit=0)  # type: ignore[attr-defined]
    assert len(runs) == 37 and all(r.state_type is StateType.SCHEDULED for r in runs)


def test_flow_run_cancel_of_a_scheduled_run() -> None:
    ok("deploy", "flows.py:hello", "--name", "dev")
    created = json.loads(ok("deployment", "run", "hello/dev", "-o", "json").stdout)
    ok("flow-run", "cancel", created["id"])
    run = get_backend().read_flow_run(created["id"])
    assert run.state_type is StateType.CANCELLED
    ok("flow-run", "cancel", created["id"])  # again: nothing changes
    assert get_backend().read_flow_run(created["id"]).state_type is StateType.CANCELLED
    one_line_error("flow-run", "cancel", "nope", contains="nope")


def test_deployment_build_then_apply(project: Path) -> None:
    ok("deployment", "build", "flows.py:hello", "--cron", "0 2 * * *", "--param", "n=4")
    ok("deployment", "build", "flows.py:record", "--name", "rec", "--pool", "etl")
    assert deployments() == []  # build only writes the file
    one_line_error("deployment", "build", "flows.py:hello", "--cron", "bad", contains="bad")
    ok("deployment", "apply")
    deps = {d.full_name: d for d in deployments()}
    assert set(deps) == {"hello/hello", "record/rec"}
    assert deps["hello/hello"].parameters == {"n": 4}
    assert deps["record/rec"].work_pool_name == "etl"


def test_flow_run_execute_runs_a_scheduled_run_as_itself() -> None:
    ok("deploy", "flows.py:hello", "--name", "dev")
    created = json.loads(
        ok("deployment", "run", "hello/dev", "--param", "n=9", "-o", "json").stdout
    )
    ok("flow-run", "execute", created["id"])
    run = get_backend().read_flow_run(created["id"])
    assert run.state_type is StateType.COMPLETED and run.run_count == 1
    names = [s.name for s in get_backend().read_states(run.id)]
    assert names == ["Scheduled", "Running", "Completed"]
    one_line_error("flow-run", "execute", created["id"], contains="only a Scheduled or Pending")
