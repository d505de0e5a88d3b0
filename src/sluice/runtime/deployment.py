"""The deployment of the flow run in progress: ``from sluice.runtime import deployment``.

Example::

    from sluice.runtime import deployment

    def runner_config() -> str:
        return deployment.parameters.get("runner_config", "default")

Every attribute is read when it is used. Outside a run of a deployment each
has an empty value, as in Prefect (``None``, ``{}``).

Attributes:

- ``id``: the deployment's id
- ``name``: its name (without the flow's: ``daily`` of ``etl/daily``)
- ``version``: its version
- ``flow_run_id``: the id of the run of it in progress
- ``parameters``: that run's parameters (the deployment's defaults updated
  with the run's own)

``name`` and ``version`` are read from the store on first use in a run.
Test code can mock one with ``SLUICE__RUNTIME__DEPLOYMENT__<NAME>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.runtime._attributes import flow_context, lookup, read_store

if TYPE_CHECKING:
    from sluice.schemas import DeploymentRecord

    # What type checkers see; the values come from ``__getattr__`` on each access.
    id: str | None
    name: str | None
    version: str | None
    flow_run_id: str | None
    parameters: dict[str, Any]


def get_id() -> str | None:
    ctx = flow_context()
    return None if ctx is None else ctx.flow_run.deployment_id


def get_flow_run_id() -> str | None:
    ctx = flow_context()
    if ctx is None or ctx.flow_run.deployment_id is None:
        return None
    return str(ctx.flow_run.id)


def get_parameters() -> dict[str, Any]:
    ctx = flow_context()
    if ctx is None or ctx.flow_run.deployment_id is None:
        return {}
    return dict(ctx.flow_run.parameters)


def _record() -> DeploymentRecord | None:
    deployment_id = get_id()
    return None if deployment_id is None else read_store("deployment", deployment_id)


def get_name() -> str | None:
    rec = _record()
    return None if rec is None else rec.name


def get_version() -> str | None:
    rec = _record()
    return None if rec is None else rec.version


_GETTERS = {
    "id": get_id,
    "name": get_name,
    "version": get_version,
    "flow_run_id": get_flow_run_id,
    "parameters": get_parameters,
}

__all__ = sorted(_GETTERS)


def __getattr__(name: str) -> Any:
    return lookup("deployment", name, _GETTERS)


def __dir__() -> list[str]:
    return sorted([*__all__, *(f"get_{n}" for n in _GETTERS)])
