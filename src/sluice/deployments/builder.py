"""``Deployment.build_from_flow(...).apply()``: the two-step way to deploy from Python.

Older Prefect code (and seed 003) builds a deployment object first and applies
it later; :func:`sluice.deployments.deploy` (``Flow.deploy``) does both in one
call. Both end in the same stored deployment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.deployments.deploying import deploy

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.flows import Flow
    from sluice.scheduling.schedules import Schedule
    from sluice.schemas import DeploymentRecord


@dataclass
class Deployment:
    """A deployment not yet stored: what :meth:`apply` will create or update."""

    flow: Flow[..., Any]
    name: str
    schedules: list[Schedule | Mapping[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    work_pool_name: str = "default"
    work_queue_name: str = "default"
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    version: str | None = None
    paused: bool = False
    entrypoint: str | None = None

    @classmethod
    def build_from_flow(
        cls,
        flow: Flow[..., Any],
        name: str,
        *,
        schedule: Schedule | Mapping[str, Any] | None = None,
        schedules: Sequence[Schedule | Mapping[str, Any]] | None = None,
        parameters: Mapping[str, Any] | None = None,
        work_pool_name: str = "default",
        work_queue_name: str | None = None,
        tags: Iterable[str] | None = None,
        description: str | None = None,
        version: str | None = None,
        paused: bool = False,
        entrypoint: str | None = None,
        apply: bool = False,
    ) -> Deployment:
        """A deployment of ``flow`` named ``name``; stored at once with ``apply=True``."""
        built = cls(
            flow,
            name,
            schedules=[*([schedule] if schedule is not None else []), *(schedules or [])],
            parameters=dict(parameters or {}),
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name or "default",
            tags=list(tags or []),
            description=description,
            version=version,
            paused=paused,
            entrypoint=entrypoint,
        )
        if apply:
            built.apply()
        return built

    def apply(self, backend: Backend | None = None) -> str:
        """Create or update the stored deployment; its id."""
        return self.apply_record(backend).id

    def apply_record(self, backend: Backend | None = None) -> DeploymentRecord:
        """Like :meth:`apply`, returning the whole stored deployment."""
        return deploy(
            self.flow,
            name=self.name,
            schedules=self.schedules,
            parameters=self.parameters,
            work_pool_name=self.work_pool_name,
            work_queue_name=self.work_queue_name,
            tags=self.tags,
            description=self.description,
            version=self.version,
            paused=self.paused,
            entrypoint=self.entrypoint,
            backend=backend,
        )


__all__ = ["Deployment"]
