"""Real flows the UI tests run (``python -m sluice run tests/ui_flows.py:FLOW``).

``demo``: a mapped task, a task that fails once and is retried, a cached
task, a subflow, logs at several levels and one task that fails for good.
``wide``: a ``.map`` too large to expand in the graph.
``hostile``: user content made of markup (flow, task, parameter, log line).
``waiting``: a task that blocks until a file appears, so a test can watch a
run move (or cancel it) while the page is open.
"""

from __future__ import annotations

import time
from pathlib import Path

from sluice import flow, get_run_logger, tags, task
from sluice.tasks import task_input_hash

XSS = "<script>alert(1)</script>"
_attempts: dict[str, int] = {}


@task
def square(x: int) -> int:
    return x * x


@task(retries=2, retry_delay_seconds=0)
def flaky(values: list[int]) -> int:
    _attempts["flaky"] = _attempts.get("flaky", 0) + 1
    if _attempts["flaky"] == 1:
        raise RuntimeError("first attempt fails on purpose")
    return sum(values)


@task(cache_key_fn=task_input_hash)
def lookup(key: str) -> dict[str, str]:
    return {"key": key, "value": key.upper()}


@task
def broken() -> None:
    raise ValueError("this task always fails")


@flow
def child(n: int) -> int:
    get_run_logger().info("child flow got %d", n)
    return n + 1


@flow(name="ui-demo")
def demo(n: int = 6, fail: bool = False, key: str = "alpha") -> int:
    logger = get_run_logger()
    logger.info("squaring %d numbers", n)
    logger.warning("a warning line for the level filter")
    with tags("ui-test"):
        squares = square.map(range(n))
    total = flaky.submit(squares).result()  # the squares are its upstream edges
    lookup(key)
    lookup(key)  # the same input again: Cached
    child(total)
    if fail:
        broken()
    return total


@flow(name="ui-wide")
def wide(n: int = 300) -> int:
    squares = square.map(range(n))
    return flaky_free_total(squares)


@task
def flaky_free_total(values: list[int]) -> int:
    return sum(values)


@task(name=XSS)
def hostile_task(text: str) -> str:
    get_run_logger().info("log line %s", text)
    return text


@flow(name=XSS)
def hostile(note: str = XSS) -> str:
    get_run_logger().info(note)
    return hostile_task(note)


@task
def wait_for(path: str) -> str:
    logger = get_run_logger()
    logger.info("waiting for %s", path)
    deadline = time.monotonic() + 100
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    logger.info("released")
    return path


@task
def after(path: str) -> int:
    return len(path)


@flow(name="ui-waiting")
def waiting(path: str) -> int:
    return after(wait_for(path))
