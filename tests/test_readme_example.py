"""The README's first code block runs as pasted, and records what it says it does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.schemas import FlowRunFilter
from sluice.states import StateType

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = pytest.mark.integration


def first_python_block(text: str) -> str:
    """The first fenced ```python block of a Markdown text."""
    found = re.search(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert found is not None, "no ```python block"
    return found.group(1)


def test_the_first_code_block_runs_as_pasted(tmp_path: Path, sluice_home: Path) -> None:
    script = tmp_path / "etl.py"
    script.write_text(first_python_block(README.read_text()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    try:
        (run,) = get_backend().list_flow_runs(FlowRunFilter(flow_name="etl-pipeline"))
        assert run.state_type is StateType.COMPLETED
        # extract("a") == [97], extract("b") == [98]; doubled and summed.
        assert run.state.result() == 2 * (97 + 98)
        tasks = get_backend().read_task_runs(run.id)
        assert sorted(t.task_name for t in tasks) == ["extract"] * 2 + ["transform"] * 2
    finally:
        close_backends()
    assert "total=390" in done.stderr + done.stdout
