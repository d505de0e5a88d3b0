"""Import workload (Sluice side): time ``import sluice`` in a fresh process.

Usage: python sluice_import.py
"""

import time

_start = time.perf_counter()
import sluice  # noqa: E402  (the import under test)

IMPORT_S = time.perf_counter() - _start

from _harness import emit  # noqa: E402  (imported after the measurement)

if __name__ == "__main__":
    # A bare directory on sys.path imports as a namespace package: not the real thing.
    real = getattr(sluice, "__file__", None) is not None
    emit(
        "import",
        ok=real,
        error=None if real else "sluice is a namespace package (no __init__.py)",
        import_s=IMPORT_S,
        version=getattr(sluice, "__version__", None),
    )
