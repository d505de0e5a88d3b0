"""A small ETL flow that shows what Sluice records: run it, then inspect it.

python examples/demo.py
sluice flow-run ls
sluice flow-run inspect <id>
sluice flow-run logs <id>
"""

from __future__ import annotations

import asyncio
import random

from sluice import flow, get_run_logger, task, unmapped
from sluice.task_runners import ThreadPoolTaskRunner

_attempts: dict[str, int] = {}


@task(retries=3, retry_delay_seconds=[0.1, 0.2, 0.4], tags=["io"], timeout_seconds=30)
def extract(source: str) -> list[int]:
    """Read rows from a source; the "flaky" source fails once, then recovers."""
    _attempts[source] = _attempts.get(source, 0) + 1
    if source == "flaky" and _attempts[source] == 1:
        raise ConnectionError(f"source {source!r} timed out")
    rng = random.Random(source)
    return [rng.randint(1, 100) for _ in range(5)]


@task
async def transform(rows: list[int], factor: int) -> list[int]:
    await asyncio.sleep(0.01)
    return [row * factor for row in rows]


@task(log_prints=True)
def load(batches: list[list[int]]) -> int:
    total = sum(sum(batch) for batch in batches)
    print(f"loaded {len(batches)} batches, total={total}")
    return total


@flow(name="report")
def report(total: int) -> str:
    get_run_logger().info("Writing the report for total=%s", total)
    return f"total is {total}"


@flow(name="etl-pipeline", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def etl(sources: list[str], factor: int = 2) -> str:
    """Extract from every source in parallel, transform, load, then report."""
    logger = get_run_logger()
    batches = transform.map(extract.map(sources), unmapped(factor))
    total = load(batches)
    logger.info("total=%s", total)
    return report(total)


if __name__ == "__main__":
    print(etl(["orders", "customers", "flaky", "inventory"]))
