"""Run logging: ``get_run_logger()``, console lines, and logs kept in the store."""

from sluice.logging.loggers import get_run_logger

__all__ = ["get_run_logger"]
