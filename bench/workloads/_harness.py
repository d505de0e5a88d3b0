"""Small stdlib-only helpers shared by the workload scripts.

Every workload script prints exactly one result line to stdout::

    BENCH-RESULT {"workload": "...", ...}

``bench/run.py`` looks for that prefix, so any other output the engine
under test writes to stdout (logs, banners) does not confuse the parser.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

MARKER = "BENCH-RESULT "


def arg_int(default: int) -> int:
    """Return the first command-line argument as an int, or ``default``."""
    return int(sys.argv[1]) if len(sys.argv) > 1 else default


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Call ``fn(*args)`` and return ``(elapsed_seconds, return_value)``."""
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def self_maxrss_kb() -> int:
    """Peak resident set size of this process so far, in KiB (Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(workload: str, **fields: Any) -> None:
    """Print the single machine-readable result line for this workload."""
    record = {"workload": workload, **fields, "self_maxrss_kb": self_maxrss_kb()}
    sys.stdout.write(MARKER + json.dumps(record) + "\n")
    sys.stdout.flush()
