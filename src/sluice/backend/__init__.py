"""Backends: how the engine records and reads runs (embedded store or server)."""

from sluice.backend.protocol import Backend

__all__ = ["Backend"]
