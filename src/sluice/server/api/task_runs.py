"""``/api/task_runs``: task runs by id, and the cache lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime

from sluice.schemas import TaskRunRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.route_table import RouteTable
from sluice.states import utcnow

router = RouteTable(prefix="/task_runs", tags=["task runs"])


# Declared before /{task_run_id} so that "cached" is not taken for an id.
@router.get("/cached", response_model=TaskRunRecord | None)
def find_cached(
    backend: BackendDep,
    cache_key: Annotated[str, Query(min_length=1)],
    now: AwareDatetime | None = None,
) -> TaskRunRecord | None:
    """The newest valid cached task run for ``cache_key`` at ``now`` (default: the server's)."""
    return backend.find_cached_task_run(cache_key, now or utcnow())


@router.get("/{task_run_id}", response_model=TaskRunRecord)
def read_task_run(task_run_id: str, backend: BackendDep) -> TaskRunRecord:
    """A task run by id or unique id prefix."""
    return backend.read_task_run(task_run_id)
