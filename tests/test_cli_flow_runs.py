"""``sluice flow-run ls|inspect|logs`` over records in a real embedded store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from sluice.backend.factory import close_backends, get_backend
from sluice.cli.main import app
from tests import cli_data
from tests.cli_data import RUN_FAILED, RUN_OK, RUN_RUNNING, TASK_OTHER, TASK_TRANSFORM

runner = CliRunner()


@pytest.fixture(autouse=True)
def data() -> Iterator[cli_data.Dataset]:
    dataset = cli_data.build(get_backend())
    yield dataset
    close_backends()


def ok(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout  # no color codes when stdout is not a tty
    return result


def error(*args: str) -> str:
    """The one-line error a failing command prints."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def listed_ids(*args: str) -> list[str]:
    return [run["id"] for run in json.loads(ok("flow-run", "ls", "-o", "json", *args).stdout)]


# -- ls --------------------------------------------------------------------------------


def test_ls_table() -> None:
    out = ok("flow-run", "ls").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["id", "flow", "name", "state", "start", "(UTC)", "duration"]
    # Newest first; full ids; UTC times; readable durations.
    assert [line.split()[0] for line in lines[2:]] == [RUN_RUNNING, RUN_FAILED, RUN_OK]
    ok_line = lines[4]
    assert "etl_pipeline" in ok_line and "amber-otter" in ok_line and "Completed" in ok_line
    assert "2025-11-22 05:03:12" in ok_line and "1m 23s" in ok_line
    assert "2m 05s" in lines[3] and "Failed" in lines[3]


def test_ls_json() -> None:
    runs = json.loads(ok("flow-run", "ls", "-o", "json").stdout)
    assert [r["id"] for r in runs] == [RUN_RUNNING, RUN_FAILED, RUN_OK]
    first_ok = runs[2]
    assert first_ok["state_type"] == "COMPLETED"
    assert first_ok["parameters"] == {"n": 3, "source": "s3://bucket/key"}
    assert first_ok["start_time"].startswith("2025-11-22T05:03:12.5")


def test_ls_filters() -> None:
    assert listed_ids("--flow-name", "etl-pipeline") == [RUN_FAILED, RUN_OK]
    assert listed_ids("-f", "etl_pipeline", "--state", "completed") == [RUN_OK]
    assert listed_ids("--state", "FAILED", "--state", "Running") == [RUN_RUNNING, RUN_FAILED]
    assert listed_ids("--state", "completed,failed") == [RUN_FAILED, RUN_OK]
    assert listed_ids("--state", "crashed") == []
    assert listed_ids("--tag", "nightly") == [RUN_OK]
    assert listed_ids("--tag", "nightly", "--tag", "adhoc") == []


def test_ls_limit_says_how_many_more() -> None:
    assert listed_ids("--limit", "1") == [RUN_RUNNING]
    out = ok("flow-run", "ls", "-n", "2").stdout
    assert RUN_OK not in out
    assert "Showing 2 of 3 runs" in out


def test_ls_empty_result() -> None:
    assert "No flow runs match." in ok("flow-run", "ls", "--state", "paused").stdout


def test_ls_bad_state_lists_valid_states() -> None:
    message = error("flow-run", "ls", "--state", "done")
    assert message.startswith("Error: unknown state 'done'; expected one of: scheduled, pending")
    assert "completed" in message and "crashed" in message


def test_ls_unknown_flow() -> None:
    assert error("flow-run", "ls", "--flow-name", "nope") == "Error: flow 'nope' not found"


# -- inspect -----------------------------------------------------------------------------


def test_inspect_table_by_prefix() -> None:
    out = ok("flow-run", "inspect", "aaaa1").stdout
    for text in (RUN_OK, "amber-otter", "etl_pipeline", "Completed", "nightly", "1m 23s"):
        assert text in out
    assert '"source": "s3://bucket/key"' in out  # parameters
    assert "State history" in out and "2025-11-22 05:03:12.500" in out
    task_rows = {line.split()[0]: line.split() for line in out.splitlines() if ":0" in line}
    # task key, name, state, runs, duration, upstream
    assert task_rows["extract:0"][1:] == ["extract-0", "Completed", "1", "1.50s", "0"]
    assert task_rows["transform:0"][1:] == ["transform-0", "Completed", "3", "13.25s", "1"]
    assert task_rows["load:0:1"][1:] == ["load-1", "Completed", "1", "0.25s", "2"]
    # The retried task's history is shown, so retries are visible.
    assert "Task run transform:0 (transform-0): 3 attempts" in out
    assert out.count("AwaitingRetry") == 2 and "ValueError: flaky" in out
    assert "Task run extract:0" not in out  # not retried, no history


def test_inspect_json_has_everything() -> None:
    data = json.loads(ok("flow-run", "inspect", RUN_OK, "-o", "json").stdout)
    assert data["flow_run"]["id"] == RUN_OK
    assert [s["name"] for s in data["states"]] == ["Pending", "Running", "Completed"]
    tasks = {t["task_key"]: t for t in data["task_runs"]}
    assert set(tasks) == {"extract:0", "transform:0", "load:0:0", "load:0:1"}
    transform = tasks["transform:0"]
    assert transform["run_count"] == 3
    assert transform["upstream_ids"] == [cli_data.TASK_EXTRACT]
    assert transform["duration_seconds"] == pytest.approx(13.25)
    assert [s["name"] for s in transform["states"]] == [
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    assert all(t["states"] for t in data["task_runs"])


def test_inspect_failed_run_shows_message() -> None:
    out = ok("flow-run", "inspect", "aaaa2").stdout
    assert "Failed: Flow run failed: boom" in out
    assert "2m 05s" in out


def test_inspect_unknown_and_ambiguous_ids() -> None:
    assert error("flow-run", "inspect", "zzzz") == "Error: flow run 'zzzz' not found"
    message = error("flow-run", "inspect", "aaaa")
    assert "ambiguous" in message and RUN_OK in message and RUN_FAILED in message


# -- logs ----------------------------------------------------------------------------------


def test_logs_all_lines_plain_text() -> None:
    lines = ok("flow-run", "logs", "aaaa1").stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].split()[:5] == [
        "2025-11-22",
        "05:03:12.600",
        "INFO",
        "sluice.flow_runs",
        "Beginning",
    ]
    assert lines[1].split()[2:] == ["DEBUG", "extract-0", "fetching", "rows"]
    assert lines[2].split()[2:4] == ["WARNING", "transform-0"]
    # User text is printed verbatim, never read as Rich markup.
    assert lines[4].endswith("[bold]not markup[/bold] done")


def test_logs_filters() -> None:
    warning_up = ok("flow-run", "logs", RUN_OK, "--level", "warning").stdout.splitlines()
    assert [line.split()[2] for line in warning_up] == ["WARNING", "ERROR"]
    tail = ok("flow-run", "logs", RUN_OK, "--tail", "2").stdout.splitlines()
    assert [line.split()[2] for line in tail] == ["INFO", "ERROR"]
    task_only = ok("flow-run", "logs", RUN_OK, "--task-run", TASK_TRANSFORM[:8]).stdout
    assert task_only.count("transform-0") == 2 and len(task_only.splitlines()) == 2
    assert ok("flow-run", "logs", RUN_RUNNING).stdout == ""


def test_logs_json() -> None:
    logs = json.loads(ok("flow-run", "logs", RUN_OK, "-o", "json", "-l", "30").stdout)
    assert [line["level"] for line in logs] == [30, 40]
    assert logs[0]["task_run_id"] == TASK_TRANSFORM


def test_logs_follow_returns_once_run_is_final() -> None:
    lines = ok("flow-run", "logs", RUN_OK, "--follow").stdout.splitlines()
    assert len(lines) == 5


def test_logs_errors() -> None:
    assert error("flow-run", "logs", "nope").startswith("Error: flow run 'nope' not found")
    message = error("flow-run", "logs", RUN_OK, "--level", "loud")
    assert message == (
        "Error: unknown log level 'loud'; expected one of: debug, info, warning, error, critical"
    )
    message = error("flow-run", "logs", RUN_OK, "--task-run", TASK_OTHER)
    assert message == f"Error: task run {TASK_OTHER} does not belong to flow run {RUN_OK}"
    assert "task run 'ffff' not found" in error("flow-run", "logs", RUN_OK, "--task-run", "ffff")
