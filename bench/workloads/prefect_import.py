"""Import workload (Prefect side): time ``import prefect`` in a fresh process.

Usage: python prefect_import.py
"""

import time

_start = time.perf_counter()
import prefect  # noqa: E402  (the import under test)

IMPORT_S = time.perf_counter() - _start

from _harness import emit  # noqa: E402  (imported after the measurement)

if __name__ == "__main__":
    # A bare directory on sys.path imports as a namespace package: not the real thing.
    real = getattr(prefect, "__file__", None) is not None
    emit(
        "import",
        ok=real,
        error=None if real else "prefect is a namespace package (no __init__.py)",
        import_s=IMPORT_S,
        version=getattr(prefect, "__version__", None),
    )
