"""Run logs reach the standard ``logging`` tree: pytest's ``caplog``, a log file.

Prefect's documented testing pattern asserts on ``caplog`` records of flow
and task loggers. Sluice prints run logs to the console itself, so a console
handler configured by the application must not print them a second time.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sluice import flow, get_run_logger, task
from tests.worker_helpers import worker_env


@task
def transform(x: int) -> int:
    get_run_logger().info("transforming %d", x)
    return x * 2


@flow
def etl(x: int) -> int:
    logger = get_run_logger()
    logger.info("starting etl for %d", x)
    result = transform(x)
    logger.warning("etl produced %d", result)
    return result


def test_caplog_sees_flow_and_task_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert etl(21) == 42
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert ("sluice.flow_runs", logging.INFO, "starting etl for 21") in records
    assert ("sluice.task_runs", logging.INFO, "transforming 21") in records
    assert ("sluice.flow_runs", logging.WARNING, "etl produced 42") in records
    # The engine's own lines too, as Prefect's "Finished in state" records.
    finished = [m for name, _, m in records if m.startswith("Finished in state Completed")]
    assert len(finished) == 2  # the task's and the flow's
    assert "etl produced 42" in caplog.text


def test_caplog_level_filters_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    etl(1)
    assert [r.getMessage() for r in caplog.records] == ["etl produced 2"]


APP = """
import logging
import sys

from sluice import flow, get_run_logger, task

logging.basicConfig(level=logging.INFO, format="APP %(name)s %(message)s")
file_handler = logging.FileHandler(sys.argv[1])
file_handler.setFormatter(logging.Formatter("FILE %(name)s %(message)s"))
logging.getLogger().addHandler(file_handler)


@task
def shout() -> None:
    get_run_logger().info("task line")


@flow
def app_flow() -> None:
    get_run_logger().info("flow line")
    shout()


app_flow()
"""


@pytest.mark.integration
def test_an_app_console_prints_each_line_once_and_its_log_file_gets_them(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(APP))
    log_file = tmp_path / "app.log"
    done = subprocess.run(
        [sys.executable, str(script), str(log_file)],
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    console = done.stdout + done.stderr
    assert console.count("flow line") == 1, console
    assert console.count("task line") == 1, console
    assert "APP sluice" not in console  # Sluice's own lines only, not the app's copy
    written = log_file.read_text()
    assert "FILE sluice.flow_runs flow line" in written
    assert "FILE sluice.task_runs task line" in written
