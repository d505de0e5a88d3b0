"""examples/qc_fastq: seed 000's QC template on a real LocalCluster, run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pytest.importorskip("distributed")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "qc_fastq"


def run_example(workdir: Path, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "qc_flow.py")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if line.startswith("results/")]


def test_qc_example_writes_per_sample_reports_and_skips_them_on_rerun(
    tmp_path: Path, sluice_home: Path
) -> None:
    calls = tmp_path / "fastqc-calls"
    env = {
        **os.environ,
        "SLUICE_HOME": str(sluice_home),
        "QC_WORKERS": "2",
        "FASTQC_CALLS": str(calls),
    }
    first = run_example(tmp_path, env)
    expected = [f"results/qc/sample_{s}" for s in "ABC"]
    assert first == expected
    for sample in "ABC":
        report = tmp_path / "results" / "qc" / f"sample_{sample}" / f"sample_{sample}_fastqc.txt"
        lines = dict(line.split("\t") for line in report.read_text().splitlines())
        assert lines["reads"] == "200" and lines["mean_length"] == "50.0"
    assert sorted(calls.read_text().split()) == ["sample_A", "sample_B", "sample_C"]

    second = run_example(tmp_path, env)
    assert second == expected
    assert len(calls.read_text().split()) == 3  # nothing ran again

    listed = subprocess.run(
        [sys.executable, "-m", "sluice", "flow-run", "ls", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    runs = json.loads(listed.stdout)
    assert [r["state_name"] for r in runs] == ["Completed", "Completed"]
    logs = subprocess.run(
        [sys.executable, "-m", "sluice", "flow-run", "logs", runs[0]["id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert logs.stdout.count("already has a report; skipping") == 3
