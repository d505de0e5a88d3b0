"""The task run in progress: ``from sluice.runtime import task_run; task_run.name``.

Every attribute is read when it is used, from the task run in progress in this
context; outside a task run each has an empty value, as in Prefect (``None``,
``[]``, ``{}``, ``0``).

Attributes:

- ``id``, ``name`` (the run's, e.g. ``fetch-3``), ``task_name`` (the task's)
- ``tags``, ``run_count`` (attempts so far, retries included)
- ``parameters``: the arguments the task was called with, by parameter name
- ``api_url``, ``ui_url``: the run on the server, in client mode (else None)

Test code can mock one with ``SLUICE__RUNTIME__TASK_RUN__<NAME>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.runtime._attributes import api_base, lookup, task_context

if TYPE_CHECKING:
    # What type checkers see; the values come from ``__getattr__`` on each access.
    id: str | None
    name: str | None
    task_name: str | None
    tags: list[str]
    run_count: int
    parameters: dict[str, Any]
    api_url: str | None
    ui_url: str | None


def get_id() -> str | None:
    ctx = task_context()
    return None if ctx is None else str(ctx.task_run.id)


def get_name() -> str | None:
    ctx = task_context()
    return None if ctx is None else str(ctx.task_run.name)


def get_task_name() -> str | None:
    ctx = task_context()
    return None if ctx is None else str(ctx.task_run.task_name)


def get_tags() -> list[str]:
    ctx = task_context()
    return [] if ctx is None else list(ctx.task_run.tags)


def get_run_count() -> int:
    ctx = task_context()
    return 0 if ctx is None else int(ctx.task_run.run_count)


def get_parameters() -> dict[str, Any]:
    ctx = task_context()
    return {} if ctx is None else dict(ctx.parameters)


def get_api_url() -> str | None:
    """The run in the server's API (client mode only)."""
    run_id, base = get_id(), api_base()
    return None if run_id is None or base is None else f"{base}/api/task_runs/{run_id}"


def get_ui_url() -> str | None:
    """The run's page in the server's web UI (client mode only)."""
    run_id, base = get_id(), api_base()
    return None if run_id is None or base is None else f"{base}/task-runs/{run_id}"


_GETTERS = {
    "id": get_id,
    "name": get_name,
    "task_name": get_task_name,
    "tags": get_tags,
    "run_count": get_run_count,
    "parameters": get_parameters,
    "api_url": get_api_url,
    "ui_url": get_ui_url,
}

__all__ = sorted(_GETTERS)


def __getattr__(name: str) -> Any:
    return lookup("task_run", name, _GETTERS)


def __dir__() -> list[str]:
    return sorted([*__all__, *(f"get_{n}" for n in _GETTERS)])
