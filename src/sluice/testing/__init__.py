"""Helpers for testing code that uses Sluice.

``from sluice.testing import sluice_test_harness`` and Prefect's spelling,
``from sluice.testing.utilities import sluice_test_harness``, name the same
context manager.
"""

from __future__ import annotations

from sluice.testing.utilities import sluice_test_harness

__all__ = ["sluice_test_harness"]
