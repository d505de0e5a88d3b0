"""Hello-world workload (Prefect side): one flow running one task.

The runner times this whole process from the outside (spawn to exit);
the internal timings printed here only help explain that figure.

Usage: python prefect_hello.py
"""

import time

_start = time.perf_counter()
from prefect import flow, task  # noqa: E402

IMPORT_S = time.perf_counter() - _start

from _harness import emit, timed  # noqa: E402


@task
def say_hello():
    return "hello"


@flow
def hello_flow():
    return say_hello()


if __name__ == "__main__":
    flow_s, result = timed(hello_flow)
    emit("hello", ok=result == "hello", result=result, import_s=IMPORT_S, flow_s=flow_s)
