"""Generate a few tiny, deterministic ``.fastq.gz`` files for the QC example."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

SAMPLES = ("sample_A", "sample_B", "sample_C")


def make_data(folder: str = "data", reads_per_sample: int = 200, length: int = 50) -> list[Path]:
    """Write one FASTQ file per sample (skipping files that exist); their paths."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, sample in enumerate(SAMPLES):
        path = target / f"{sample}.fastq.gz"
        paths.append(path)
        if path.exists():
            continue
        rng = random.Random(number)
        lines = []
        for read in range(reads_per_sample):
            sequence = "".join(rng.choice("ACGT") for _ in range(length))
            lines += [f"@{sample}.{read}", sequence, "+", "I" * length]
        # mtime=0: the same bytes on every machine
        with gzip.GzipFile(path, "wb", mtime=0) as handle:
            handle.write(("\n".join(lines) + "\n").encode())
    return paths


if __name__ == "__main__":
    for made in make_data():
        print(made)
