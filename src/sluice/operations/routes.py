"""The table of operations over HTTP: one :class:`Route` per request type.

It drives both ends: the server registers one FastAPI route per entry
(:mod:`sluice.server.api.operations`) and the HTTP client sends every
request through one ``execute`` (:class:`sluice.backend.http.HttpBackend`).
An entry says where the request's fields travel and what comes back:

- path: its ``{placeholders}`` are fields (by their wire name, see ``names``);
- the other fields: the query of a GET or DELETE, else the JSON body: one
  object of those fields, or with ``body`` one field that is the whole body;
- ``names``: a field's name on the wire where it differs, for a path
  placeholder, a query parameter or a body key (``"queue.pool_name"`` names an
  attribute of the body field; a :class:`SplitKey` fills two placeholders);
- ``answer``: a one-field object the result is wrapped in (``{"ids": [...]}``);
- ``status`` on success, ``retry`` (whether a request whose answer was lost
  may be sent again), ``pager`` (how the client asks for a list longer than
  the server's pages), ``bounds`` (the server's limits on query values),
  ``patch_of`` (a ``changes`` body holds fields of this record type).

The paths, methods and JSON shapes are the API of ``docs/api.md`` and
``docs/api-deployments.md``. Plain data: importing this module loads
neither FastAPI nor httpx.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sluice.api_schemas import AttemptAnswer, Count, CreatedCount, MarkedIds
from sluice.operations import deployments as dep
from sluice.operations import runs
from sluice.operations.base import Operation, request_fields
from sluice.schemas import DeploymentRecord, WorkPoolRecord, WorkQueueRecord

#: most records a listing answers per request (longer lists take several pages)
MAX_PAGE = 1000
#: largest offset or level a query may give (a 64-bit integer)
INT64_MAX = 2**63 - 1

Send = Callable[[Operation[Any]], Any]


class Retry(enum.Enum):
    """Whether the client sends a request again when its answer was lost."""

    #: never: it could be done twice (a claim, a plain creation)
    NEVER = "never"
    #: for a few seconds while the server is unreachable (reads, idempotent writes)
    BRIEF = "brief"
    #: for the store's whole retry timeout (a worker must not give up on it)
    PATIENT = "patient"


@dataclass(frozen=True, slots=True)
class Bounds:
    """The server's limits on a query value (a page size, an offset)."""

    ge: int | None = None
    le: int | None = None
    min_length: int | None = None


@dataclass(frozen=True, slots=True)
class SplitKey:
    """A key ``A/B`` carried by two path placeholders (``{flow_name}/{name}``).

    A key without ``/`` is an id: the client first asks ``by_id(key)``, a
    listing answering the one object of that id (empty if unknown), and uses
    its ``A/B`` name (``full_name`` of it).
    """

    first: str
    second: str
    kind: str
    by_id: Callable[[str], Operation[list[Any]]]
    full_name: Callable[[Any], str]

    def join(self, first: str, second: str) -> str:
        """The key of the two placeholders' values."""
        return f"{first}/{second}"


@dataclass(frozen=True, slots=True)
class OffsetPages:
    """A listing asked for ``size`` records at a time with its ``limit`` and ``offset``
    fields; with ``all_below_one`` a limit <= 0 means every record."""

    size: int = MAX_PAGE
    all_below_one: bool = False

    def collect(self, op: Any, send: Send) -> list[Any]:
        """Every page ``op`` asks for, in order."""
        wanted = op.limit if op.limit > 0 or not self.all_below_one else math.inf
        if wanted <= self.size:
            return list(send(op)) if wanted > 0 else []
        found: list[Any] = []
        while wanted > 0:
            size = int(min(wanted, self.size))
            page = send(dataclasses.replace(op, limit=size, offset=op.offset + len(found)))
            found.extend(page)
            wanted -= len(page)
            if len(page) < size:
                break
        return found


@dataclass(frozen=True, slots=True)
class KeysetPages:
    """A listing ordered by ``key``, asked for a page at a time from the last key seen
    (field ``after``, inclusive: records seen already are skipped by id); a limit <= 0
    means every record."""

    after: str
    key: str
    size: int = MAX_PAGE

    def collect(self, op: Any, send: Send) -> list[Any]:
        """Every page ``op`` asks for, in order."""
        wanted = op.limit if op.limit > 0 else math.inf
        found: list[Any] = []
        seen: set[str] = set()
        after = getattr(op, self.after)
        while wanted > 0:
            size = int(min(wanted, self.size))
            page = send(dataclasses.replace(op, limit=size, **{self.after: after}))
            fresh = [r for r in page if r.id not in seen]
            found.extend(fresh)
            seen.update(r.id for r in fresh)
            wanted -= len(fresh)
            if len(page) < size or not fresh:
                break
            after = getattr(page[-1], self.key)
        return found


Pager = OffsetPages | KeysetPages


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """How one operation travels over HTTP (see the module docstring)."""

    op: type[Operation[Any]]
    method: str
    #: the path below ``/api``
    path: str
    #: the OpenAPI group
    tag: str
    status: int = 200
    body: str | None = None
    names: Mapping[str, str | SplitKey] = field(default_factory=dict)
    bounds: Mapping[str, Bounds] = field(default_factory=dict)
    answer: type | None = None
    retry: Retry | Callable[[Any], Retry] = Retry.BRIEF
    pager: Pager | None = None
    patch_of: type | None = None

    def retry_of(self, op: Operation[Any]) -> Retry:
        """Whether ``op`` may be sent again after a lost answer."""
        return self.retry if isinstance(self.retry, Retry) else self.retry(op)

    @property
    def answer_field(self) -> str | None:
        """The key the result is wrapped in (None: the result is the whole answer)."""
        return None if self.answer is None else dataclasses.fields(self.answer)[0].name


def _created_once(op: dep.CreateFlowRunFromDeployment) -> Retry:
    # With an idempotency key a second request answers the run the first created.
    return Retry.BRIEF if op.idempotency_key is not None else Retry.NEVER


DEPLOYMENT_KEY = SplitKey(
    "flow_name",
    "name",
    "deployment",
    lambda key: dep.ListDeployments(id=key),
    lambda found: str(found.full_name),
)
_BY_KEY = {"key": DEPLOYMENT_KEY}
_STATE = {"state_types": "state"}
_RUN_FILTER = {"state_types": "state", "tags": "tag"}
_PAGE = {"limit": Bounds(ge=1, le=MAX_PAGE), "offset": Bounds(ge=0, le=INT64_MAX)}
_FLOW_RUN = "/flow_runs/{flow_run_id}"
_DEPLOYMENT = "/deployments/{flow_name}/{name}"
_POOL = "/work_pools/{name}"
_QUEUE = "/work_pools/{name}/queues/{queue}"
_IN_POOL = {"pool_name": "name"}
_IN_QUEUE = {"pool_name": "name", "name": "queue"}

# fmt: off
#: every operation the API offers, in the order the server declares them (a fixed
#: path before a path parameter that would take it: ``/flow_runs/count`` first)
ROUTES: tuple[Route, ...] = (
    # -- flows, flow runs, task runs, states, logs --------------------------------------
    Route(runs.ListFlows, "GET", "/flows", "flows", bounds={"limit": Bounds(ge=1, le=MAX_PAGE)}),
    Route(runs.ReadFlow, "GET", "/flows/{name}", "flows"),
    Route(
        runs.ListFlowRuns, "GET", "/flow_runs", "flow runs",
        names=_RUN_FILTER, bounds=_PAGE, pager=OffsetPages(),
    ),
    Route(
        runs.CountFlowRuns, "GET", "/flow_runs/count", "flow runs",
        names=_RUN_FILTER, bounds=_PAGE, answer=Count,
    ),
    Route(
        runs.MarkLapsedRunsCrashed, "POST", "/flow_runs/mark_lapsed", "flow runs",
        answer=MarkedIds,
    ),
    Route(
        runs.MarkGoneRunsCrashed, "POST", "/flow_runs/mark_gone", "flow runs",
        answer=MarkedIds,
    ),
    Route(runs.ReadFlowRun, "GET", _FLOW_RUN, "flow runs"),
    Route(
        runs.ClaimAttempt, "POST", f"{_FLOW_RUN}/attempt", "flow runs",
        answer=AttemptAnswer, retry=Retry.PATIENT,
    ),
    Route(runs.ReadAttempt, "GET", f"{_FLOW_RUN}/attempt", "flow runs", answer=AttemptAnswer),
    Route(runs.ReadTaskRuns, "GET", f"{_FLOW_RUN}/task_runs", "flow runs"),
    Route(runs.ReadJournal, "GET", f"{_FLOW_RUN}/journal", "flow runs"),
    Route(
        runs.ReadLogs, "GET", f"{_FLOW_RUN}/logs", "flow runs",
        bounds={
            "min_level": Bounds(ge=0, le=INT64_MAX), "offset": Bounds(ge=0, le=INT64_MAX),
            "limit": Bounds(ge=1, le=INT64_MAX),
        },
    ),
    Route(
        runs.SetFlowRunState, "POST", f"{_FLOW_RUN}/set_state", "flow runs",
        retry=Retry.NEVER,
    ),
    Route(runs.CancelFlowRun, "POST", f"{_FLOW_RUN}/cancel", "flow runs"),
    Route(dep.ResumeFlowRun, "POST", f"{_FLOW_RUN}/resume", "work pools"),
    Route(
        runs.FindCachedTaskRun, "GET", "/task_runs/cached", "task runs",
        bounds={"cache_key": Bounds(min_length=1)},
    ),
    Route(runs.ReadTaskRun, "GET", "/task_runs/{task_run_id}", "task runs"),
    Route(runs.ReadStates, "GET", "/runs/{run_id}/states", "states"),
    # -- deployments and their runs ------------------------------------------------------
    Route(dep.UpsertDeployment, "PUT", "/deployments", "deployments", body="deployment"),
    Route(
        dep.ListDeployments, "GET", "/deployments", "deployments",
        bounds={"limit": Bounds(ge=1, le=MAX_PAGE), "offset": Bounds(ge=0, le=1_000_000)},
        pager=OffsetPages(all_below_one=True),
    ),
    Route(dep.ReadDeployment, "GET", _DEPLOYMENT, "deployments", names=_BY_KEY),
    Route(
        dep.UpdateDeployment, "PATCH", _DEPLOYMENT, "deployments",
        names=_BY_KEY, body="changes", patch_of=DeploymentRecord,
    ),
    Route(dep.DeleteDeployment, "DELETE", _DEPLOYMENT, "deployments", status=204, names=_BY_KEY),
    Route(
        dep.CreateFlowRunFromDeployment, "POST", f"{_DEPLOYMENT}/runs", "deployments",
        status=201, names=_BY_KEY, retry=_created_once,
    ),
    Route(
        dep.ListDeploymentRuns, "GET", f"{_DEPLOYMENT}/runs", "deployments",
        names={**_BY_KEY, **_STATE}, bounds={"limit": Bounds(ge=1, le=MAX_PAGE)},
        pager=KeysetPages(after="scheduled_after", key="scheduled_start_time"),
    ),
    Route(
        dep.CreateScheduledRuns, "POST", f"{_DEPLOYMENT}/scheduled_runs", "deployments",
        names=_BY_KEY, answer=CreatedCount,
    ),
    # -- the scheduler's steps -------------------------------------------------------------
    Route(dep.MarkLateRuns, "POST", "/scheduler/mark_late", "deployments", answer=MarkedIds),
    Route(
        dep.RequeueOrphanedRuns, "POST", "/scheduler/requeue_orphaned", "deployments",
        names={"timeout": "grace"}, answer=MarkedIds,
    ),
    Route(
        dep.SkipRunsOverMaxActive, "POST", "/scheduler/skip_over_max_active", "deployments",
        answer=MarkedIds,
    ),
    # -- work pools, queues, workers, claims -----------------------------------------------
    Route(
        dep.CreateWorkPool, "POST", "/work_pools", "work pools",
        status=201, body="pool", retry=Retry.NEVER,
    ),
    Route(dep.ListWorkPools, "GET", "/work_pools", "work pools"),
    Route(dep.ReadWorkPool, "GET", _POOL, "work pools"),
    Route(
        dep.UpdateWorkPool, "PATCH", _POOL, "work pools",
        body="changes", patch_of=WorkPoolRecord,
    ),
    Route(dep.DeleteWorkPool, "DELETE", _POOL, "work pools", status=204),
    Route(dep.ListWorkQueues, "GET", f"{_POOL}/queues", "work pools", names=_IN_POOL),
    Route(
        dep.CreateWorkQueue, "POST", f"{_POOL}/queues", "work pools",
        status=201, body="queue", names={"queue.pool_name": "name"}, retry=Retry.NEVER,
    ),
    Route(dep.ReadWorkQueue, "GET", _QUEUE, "work pools", names=_IN_QUEUE),
    Route(
        dep.UpdateWorkQueue, "PATCH", _QUEUE, "work pools",
        names=_IN_QUEUE, body="changes", patch_of=WorkQueueRecord,
    ),
    Route(dep.DeleteWorkQueue, "DELETE", _QUEUE, "work pools", status=204, names=_IN_QUEUE),
    Route(dep.WorkerHeartbeat, "POST", f"{_POOL}/workers", "work pools", names=_IN_POOL),
    Route(dep.ListWorkers, "GET", f"{_POOL}/workers", "work pools", names=_IN_POOL),
    Route(dep.ClaimFlowRuns, "POST", "/claims", "work pools", retry=Retry.NEVER),
    Route(dep.ReleaseFlowRuns, "POST", "/claims/release", "work pools", answer=MarkedIds),
)
# fmt: on


_ROUTE_OF: dict[type[Any], Route] = {route.op: route for route in ROUTES}


def route_of(op_type: type[Operation[Any]]) -> Route:
    """The entry of ``op_type``.

    Raises:
        KeyError: the API has no route for it.
    """
    try:
        return _ROUTE_OF[op_type]
    except KeyError:
        raise KeyError(f"no route for {op_type.__name__}") from None


@dataclass(frozen=True, slots=True)
class Placement:
    """Where each field of a route's request travels.

    Attributes:
        path: ``(placeholder, field)`` pairs; the field may be dotted
            (``queue.pool_name``: an attribute of the body field).
        split: ``(field, key)`` of a field filling two placeholders, if any.
        query: ``(field, parameter)`` pairs.
        body_fields: ``(field, key)`` pairs of an object body.
        body: the field that is the whole body, if one is.
    """

    path: tuple[tuple[str, str], ...]
    split: tuple[str, SplitKey] | None
    query: tuple[tuple[str, str], ...]
    body_fields: tuple[tuple[str, str], ...]
    body: str | None

    @property
    def has_body(self) -> bool:
        """Whether requests carry a JSON body."""
        return self.body is not None or bool(self.body_fields)


@cache
def placement(route: Route) -> Placement:
    """Where the fields of ``route``'s request travel (see the module docstring).

    Raises:
        TypeError: the entry does not fit its request type (a placeholder no
            field fills, a field with nowhere to go).
    """
    placeholders = _placeholders(route.path)
    path: list[tuple[str, str]] = []
    split: tuple[str, SplitKey] | None = None
    query: list[tuple[str, str]] = []
    body_fields: list[tuple[str, str]] = []
    # A placeholder a field is named onto is that field's, not a same-named one's.
    taken: set[str] = set()
    for name, wire in route.names.items():
        if isinstance(wire, SplitKey):
            taken |= {wire.first, wire.second}
        else:
            taken.add(wire)
            if "." in name:
                path.append((wire, name))
    for f in request_fields(route.op):
        named = route.names.get(f.name)
        own_placeholder = named is None and f.name in placeholders and f.name not in taken
        if isinstance(named, SplitKey):
            split = (f.name, named)
        elif named in placeholders or own_placeholder:
            path.append((named or f.name, f.name))
        elif f.name == route.body:
            continue
        elif route.method in ("GET", "DELETE"):
            query.append((f.name, named or f.name))
        elif route.body is not None:
            raise TypeError(f"{route.op.__name__}.{f.name} has no place beside the body")
        else:
            body_fields.append((f.name, named or f.name))
    filled = {p for p, _ in path} | ({split[1].first, split[1].second} if split else set())
    if filled != set(placeholders):
        raise TypeError(f"{route.path}: no field of {route.op.__name__} fills {placeholders}")
    return Placement(tuple(path), split, tuple(query), tuple(body_fields), route.body)


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
