"""What the three runtime modules share: the run in progress, and attribute lookup.

Each module (:mod:`~sluice.runtime.flow_run`, :mod:`~sluice.runtime.task_run`,
:mod:`~sluice.runtime.deployment`) has a table of getters, read on every
attribute access through the module's ``__getattr__``, so that a value is
always the current run's (a module attribute could not change per thread or
per asyncio task). A value can be mocked for tests with an environment
variable ``SLUICE__RUNTIME__<MODULE>__<NAME>`` (as Prefect's ``PREFECT__RUNTIME__...``):
its text is converted to the type of the real value.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sluice.backend.factory import get_backend
from sluice.context import flow_run_var, task_run_var
from sluice.settings import load_settings

if TYPE_CHECKING:
    from sluice.context import FlowRunContext, TaskRunContext
    from sluice.schemas import FlowRunRecord


def flow_context() -> FlowRunContext | None:
    """The flow run in progress in this context (inside a task: its flow's), or None."""
    return flow_run_var.get()


def task_context() -> TaskRunContext | None:
    """The task run in progress in this context, or None."""
    return task_run_var.get()


def flow_run_record() -> FlowRunRecord | None:
    """The record of the flow run in progress, or None."""
    ctx = flow_context()
    return None if ctx is None else ctx.flow_run


def read_store(what: str, key: str) -> Any:
    """Read a flow run or deployment of the run in progress from its store.

    Args:
        what: ``"flow_run"`` or ``"deployment"``.
        key: its id.
    """
    ctx = flow_context()
    backend = ctx.backend if ctx is not None else get_backend()
    return backend.read_flow_run(key) if what == "flow_run" else backend.read_deployment(key)


def api_base() -> str | None:
    """The server's URL in client mode (``SLUICE_API_URL``), else None."""
    ctx = flow_context()
    url = ctx.settings.api_url if ctx is not None else load_settings().api_url
    return url.rstrip("/") or None


def lookup(module: str, name: str, getters: Mapping[str, Callable[[], Any]]) -> Any:
    """The value of attribute ``name`` of runtime module ``module`` (``flow_run`` ...).

    Raises:
        AttributeError: no such attribute (and none mocked by that name).
    """
    env_key = f"SLUICE__RUNTIME__{module.upper()}__{name.upper()}"
    getter = getters.get(name)
    if getter is None:
        if env_key in os.environ:
            return os.environ[env_key]
        raise AttributeError(f"module 'sluice.runtime.{module}' has no attribute {name!r}")
    value = getter()
    mocked = os.environ.get(env_key)
    return value if mocked is None else _as_type_of(value, mocked, env_key)


def _as_type_of(value: Any, text: str, env_key: str) -> Any:
    if value is None or isinstance(value, str):
        return text
    if isinstance(value, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(value, (int, float)):
        return type(value)(text)
    if isinstance(value, _dt.datetime):
        moment = _dt.datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)
    raise ValueError(
        f"{env_key}: a {type(value).__name__} value cannot be mocked with an environment "
        "variable; monkeypatch it instead"
    )
