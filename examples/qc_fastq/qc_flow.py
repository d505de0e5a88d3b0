"""Sample-parallel QC on Dask: the "qc-fastq" template of the Prefect + Dask
playbook, with ``prefect`` replaced by ``sluice``.

Run it from this folder (it creates ``data/`` with three tiny samples, and
puts the stand-in ``fastqc`` next to this file on PATH if no real one is
installed)::

    python qc_flow.py

Outputs go to ``results/qc/<sample>/``, one folder per sample. Running it
again skips every sample whose report already exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sluice import flow, get_run_logger, task
from sluice.task_runners import DaskTaskRunner

HERE = Path(__file__).resolve().parent
WORKERS = int(os.environ.get("QC_WORKERS", "4"))


def sample_name(reads: Path) -> str:
    """``data/sample_A.fastq.gz`` -> ``sample_A``."""
    return reads.name.split(".")[0]


@task(retries=2, retry_delay_seconds=30)
def fastqc(reads: Path, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    sample_out = outdir / sample_name(reads)
    report = sample_out / f"{sample_name(reads)}_fastqc.txt"
    if report.exists():
        # Idempotent: a deterministic location that already holds the output.
        get_run_logger().info("%s already has a report; skipping", sample_name(reads))
        return sample_out
    sample_out.mkdir(exist_ok=True)

    cmd = ["fastqc", "-o", str(sample_out), str(reads)]
    subprocess.run(cmd, check=True)

    # Return a deterministic artifact path
    return sample_out


@flow(
    name="qc-fastq",
    task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": WORKERS, "threads_per_worker": 1, "dashboard_address": ":0"}
    ),
)
def qc_flow(reads_glob: str, outdir: str = "results/qc") -> list[str]:
    reads = sorted(Path(".").glob(reads_glob))
    futures = [fastqc.submit(r, Path(outdir)) for r in reads]
    results = [f.result() for f in futures]
    return [str(p) for p in results]


def use_stand_in_fastqc() -> None:
    """Put the stand-in ``fastqc`` on PATH when no real one is installed.

    Set before the flow starts, so the Dask workers (new processes) inherit it.
    """
    if shutil.which("fastqc") is None:
        os.environ["PATH"] = f"{HERE}{os.pathsep}{os.environ.get('PATH', '')}"


# Dask starts its workers as new Python processes that import this file
# again: the guard keeps them from running the flow themselves.
if __name__ == "__main__":
    from make_data import make_data

    use_stand_in_fastqc()
    make_data("data")
    for folder in qc_flow("data/*.fastq.gz"):
        print(folder)
