"""Porting and running a Prefect-style script, as ``docs/from-prefect.md`` tells users to."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

#: the replacements of docs/from-prefect.md, in their order
REPLACEMENTS = (
    (r"prefect_dask\.task_runners", "sluice.task_runners"),
    (r"\bprefect\b", "sluice"),
    (r"prefect_test_harness", "sluice_test_harness"),
    (r"Prefect", "Sluice"),
    (r"PREFECT_", "SLUICE_"),
)
#: what a script prints to report its outcome: ``RESULT {json}``
RESULT = "RESULT "


def port(source: str) -> str:
    """``source`` with Prefect's names replaced by Sluice's."""
    text = textwrap.dedent(source)
    for pattern, replacement in REPLACEMENTS:
        text = re.sub(pattern, replacement, text)
    assert "prefect" not in text.lower(), "the port left a Prefect name behind"
    return text


def write_ported(folder: Path, name: str, source: str) -> Path:
    """Port ``source`` into ``folder/name``; the path."""
    path = folder / name
    path.write_text(port(source))
    return path


def run_script(path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python path args...`` from its folder, with this test's Sluice environment."""
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=path.parent,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def results(done: subprocess.CompletedProcess[str]) -> list[Any]:
    """Every ``RESULT`` line the script printed, decoded."""
    return [
        json.loads(line[len(RESULT) :])
        for line in done.stdout.splitlines()
        if line.startswith(RESULT)
    ]
