"""``LazyModule``: a module imported when one of its names is first used.

For modules whose import costs more than the process that names them may
need: the request types of :mod:`sluice.operations` are 40-odd frozen
dataclasses (about 10-20 ms to build), which a process that only records runs
never uses. Unlike ``importlib.util.LazyLoader`` it is safe from several
threads at once: each attribute is read from the module ``importlib`` returns,
fully imported (the import lock makes other threads wait).
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``; reading an attribute imports it (once)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"
