"""The flow run in progress: ``from sluice.runtime import flow_run; flow_run.name``.

Example::

    from sluice.runtime import flow_run

    @flow
    def nightly():
        day = flow_run.scheduled_start_time   # the tick a scheduled/backfilled run is for

Every attribute is read when it is used, from the flow run in progress in
this context (a task reads its flow's run). Outside any run each has an empty
value, as in Prefect: ``None``, ``[]``, ``{}``, ``0``, and for
``scheduled_start_time`` the current time.

Attributes (Prefect's names, then Sluice's own):

- ``id``, ``name``, ``flow_name``, ``flow_version``, ``tags``, ``run_count``
- ``parameters``: the run's parameters, as called
- ``scheduled_start_time``: when the run was due (a scheduled or backfilled
  run's tick; else its start); outside a run, now
- ``parent_flow_run_id``: the flow run this one is a subflow of, if any
- ``parent_deployment_id``: that parent run's deployment, if any
- ``root_flow_run_id``: the outermost run of the chain of parents
- ``job_variables``: the run's job variables (``run_deployment(job_variables=...)``)
- ``api_url``, ``ui_url``: the run on the server, in client mode (else None)
- ``state``: the run's current state, a :class:`~sluice.states.State`
- ``deployment_id``, ``deployment_name`` (``FLOW/NAME``), ``work_pool_name``

Test code can mock one with ``SLUICE__RUNTIME__FLOW_RUN__<NAME>`` (see
:mod:`sluice.runtime._attributes`).
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from sluice.runtime._attributes import (
    api_base,
    flow_context,
    flow_run_record,
    lookup,
    read_store,
    task_context,
)

if TYPE_CHECKING:
    from sluice.states import State

    # What type checkers see; the values come from ``__getattr__`` on each access.
    id: str | None
    name: str | None
    flow_name: str | None
    flow_version: str | None
    tags: list[str]
    run_count: int
    parameters: dict[str, Any]
    scheduled_start_time: _dt.datetime
    parent_flow_run_id: str | None
    parent_deployment_id: str | None
    root_flow_run_id: str | None
    job_variables: dict[str, Any]
    api_url: str | None
    ui_url: str | None
    state: State | None
    deployment_id: str | None
    deployment_name: str | None
    work_pool_name: str | None


def get_id() -> str | None:
    """The flow run's id (inside a task: its flow's run)."""
    rec = flow_run_record()
    if rec is not None:
        return str(rec.id)
    task = task_context()
    return None if task is None else task.flow_run_id


def get_name() -> str | None:
    rec = flow_run_record()
    return None if rec is None else str(rec.name)


def get_flow_name() -> str | None:
    rec = flow_run_record()
    return None if rec is None else str(rec.flow_name)


def get_flow_version() -> str | None:
    rec = flow_run_record()
    return None if rec is None else rec.flow_version


def get_tags() -> list[str]:
    rec = flow_run_record()
    return [] if rec is None else list(rec.tags)


def get_run_count() -> int:
    rec = flow_run_record()
    return 0 if rec is None else int(rec.run_count)


def get_parameters() -> dict[str, Any]:
    """The run's parameters (as called; empty outside a run)."""
    ctx = flow_context()
    return {} if ctx is None else dict(ctx.parameters)


def get_scheduled_start_time() -> _dt.datetime:
    """When the run was due: a scheduled or backfilled run's tick; else its start.
    Outside a run: now (UTC)."""
    rec = flow_run_record()
    if rec is None:
        return _dt.datetime.now(_dt.timezone.utc)
    found: _dt.datetime = rec.scheduled_start_time or rec.start_time or rec.created
    return found


def get_parent_flow_run_id() -> str | None:
    rec = flow_run_record()
    return None if rec is None else rec.parent_flow_run_id


def get_parent_deployment_id() -> str | None:
    """The deployment of the run this one is a subflow of (read from the store), or None."""
    parent = get_parent_flow_run_id()
    if parent is None:
        return None
    found: str | None = read_store("flow_run", parent).deployment_id
    return found


def get_root_flow_run_id() -> str | None:
    """The outermost flow run of this run's chain of parents (this run's id if it has none)."""
    rec = flow_run_record()
    if rec is None:
        return get_id()
    root, parent = rec.id, rec.parent_flow_run_id
    seen = {root}
    while parent is not None and parent not in seen:
        seen.add(parent)
        root, parent = parent, read_store("flow_run", parent).parent_flow_run_id
    return str(root)


def get_job_variables() -> dict[str, Any]:
    rec = flow_run_record()
    return {} if rec is None else dict(rec.job_variables)


def get_api_url() -> str | None:
    """The run in the server's API (client mode only)."""
    run_id, base = get_id(), api_base()
    return None if run_id is None or base is None else f"{base}/api/flow_runs/{run_id}"


def get_ui_url() -> str | None:
    """The run's page in the server's web UI (client mode only)."""
    run_id, base = get_id(), api_base()
    return None if run_id is None or base is None else f"{base}/runs/{run_id}"


def get_state() -> State | None:
    """The run's current state (``Running`` while its code runs)."""
    rec = flow_run_record()
    return None if rec is None else rec.state


def get_deployment_id() -> str | None:
    rec = flow_run_record()
    return None if rec is None else rec.deployment_id


def get_deployment_name() -> str | None:
    """The deployment's ``FLOW/NAME`` (read from the store on use), or None."""
    deployment_id = get_deployment_id()
    if deployment_id is None:
        return None
    return str(read_store("deployment", deployment_id).full_name)


def get_work_pool_name() -> str | None:
    rec = flow_run_record()
    return None if rec is None else rec.work_pool_name


_GETTERS = {
    "id": get_id,
    "name": get_name,
    "flow_name": get_flow_name,
    "flow_version": get_flow_version,
    "tags": get_tags,
    "run_count": get_run_count,
    "parameters": get_parameters,
    "scheduled_start_time": get_scheduled_start_time,
    "parent_flow_run_id": get_parent_flow_run_id,
    "parent_deployment_id": get_parent_deployment_id,
    "root_flow_run_id": get_root_flow_run_id,
    "job_variables": get_job_variables,
    "api_url": get_api_url,
    "ui_url": get_ui_url,
    "state": get_state,
    "deployment_id": get_deployment_id,
    "deployment_name": get_deployment_name,
    "work_pool_name": get_work_pool_name,
}

__all__ = sorted(_GETTERS)


def __getattr__(name: str) -> Any:
    return lookup("flow_run", name, _GETTERS)


def __dir__() -> list[str]:
    return sorted([*__all__, *(f"get_{n}" for n in _GETTERS)])
