"""``/api/ui``: the JSON the web UI's pages poll, shaped so that polling stays cheap.

Every answer carries an ``ETag``; a request with a matching ``If-None-Match``
gets a bodiless 304, so a page polling every two seconds re-renders only when
something changed. Where the data is large (the task runs of a flow run) the
tag comes from a cheap version query (count and update times of the task
runs) computed *before* the heavy read, so an unchanged 10,000-task run costs
one indexed aggregate per poll. See docs/ui.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, Query, Request, Response
from pydantic import AwareDatetime

from sluice.operations.routes import INT64_MAX, MAX_PAGE
from sluice.schemas import FlowRunFilter, FlowRunRecord, TaskRunRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.route_table import RouteTable
from sluice.states import StateType

if TYPE_CHECKING:
    from sqlalchemy import Connection

router = RouteTable(prefix="/ui", tags=["ui"])


#: dashboard windows: span and bucket width, in seconds
RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 1800),
    "7d": (7 * 86400, 3 * 3600),
    "30d": (30 * 86400, 12 * 3600),
}
_PARAM = re.compile(r"\{[^}]*\}")
#: a Scheduled or Pending run waiting longer than this counts as late
LATE_AFTER_SECONDS = 60.0
#: largest inline JSON result shown in a preview (characters)
PREVIEW_CHARS = 20_000
#: API paths whose presence turns on UI features (buttons, pages); ``{}`` is any path parameter
FEATURE_PATHS = {
    "resume": "/api/flow_runs/{}/resume",
    "deployments": "/api/deployments",
    "work_pools": "/api/work_pools",
}


def _filter(
    flow_name: str | None = None,
    state: Annotated[list[StateType] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    started_after: AwareDatetime | None = None,
    started_before: AwareDatetime | None = None,
    parent_flow_run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> FlowRunFilter:
    return FlowRunFilter(
        flow_name=flow_name or None,
        state_types=state or None,
        tags=tag or None,
        started_after=started_after,
        started_before=started_before,
        parent_flow_run_id=parent_flow_run_id or None,
        limit=limit,
        offset=offset,
    )


#: the filters of ``GET /api/flow_runs``, for the UI's page of runs
FilterDep = Annotated[FlowRunFilter, Depends(_filter)]


def _etag(token: str) -> str:
    return '"' + hashlib.sha1(token.encode()).hexdigest()[:24] + '"'


def _not_modified(request: Request, etag: str) -> Response | None:
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
    return None


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), default=str)


def _json(payload: str, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    return Response(payload, media_type="application/json", headers=headers)


def _body_tagged(request: Request, body: Any) -> Response:
    """Answer ``body``, or 304 when the browser already holds exactly it."""
    payload = _dumps(body)
    etag = _etag(payload)
    return _not_modified(request, etag) or _json(payload, etag)


@lru_cache(maxsize=1)
def _edge_cache() -> Any:
    from sluice.store.ui_graph import EdgeCache

    return EdgeCache()


@lru_cache(maxsize=4)
def _adapter(kind: str) -> Any:
    # Building an adapter costs milliseconds: once per record type, not per request.
    from pydantic import TypeAdapter

    return TypeAdapter(FlowRunRecord if kind == "flow" else TaskRunRecord)


_RECORD_ADAPTERS: dict[type, Any] = {}


def _record_json(record: Any) -> dict[str, Any]:
    """Any record dataclass as JSON-ready data (times as ISO text)."""
    kind = type(record)
    adapter = _RECORD_ADAPTERS.get(kind)
    if adapter is None:  # built once per record class: it costs milliseconds
        from pydantic import TypeAdapter

        adapter = _RECORD_ADAPTERS[kind] = TypeAdapter(kind)
    data: dict[str, Any] = adapter.dump_python(record, mode="json")
    return data


def _record(record: FlowRunRecord | TaskRunRecord) -> Any:
    kind = "flow" if isinstance(record, FlowRunRecord) else "task"
    return _adapter(kind).dump_python(record, mode="json")


def result_preview(ref: str | None) -> dict[str, Any] | None:
    """What the UI can show of a stored result without loading it (no pickles, no files)."""
    if not ref:
        return None
    try:
        meta = json.loads(ref)
    except ValueError:
        return {"kind": "unknown"}
    if not isinstance(meta, dict):
        return {"kind": "unknown"}
    if "v" in meta:
        text = json.dumps(meta["v"], indent=2, ensure_ascii=False)
        return {
            "kind": "json",
            "text": text[:PREVIEW_CHARS],
            "truncated": len(text) > PREVIEW_CHARS,
        }
    if "b64" in meta:
        return {"kind": "inline", "serializer": str(meta.get("s"))}
    return {"kind": "file", "serializer": str(meta.get("s")), "path": str(meta.get("path"))}


# -- the whole UI ---------------------------------------------------------------------


@router.get("/features")
def features(request: Request) -> dict[str, bool]:
    """Which optional API features this server has (the UI shows their pages and buttons)."""
    from sluice.server.ui.routes import route_paths

    paths = {_PARAM.sub("{}", path) for path in route_paths(request.app)}
    return {name: path in paths for name, path in FEATURE_PATHS.items()}


@router.get("/dashboard")
def dashboard(
    request: Request,
    backend: BackendDep,
    range: Literal["1h", "24h", "7d", "30d"] = "24h",
) -> Response:
    """Runs over time by state, recent failures, late runs, the running count and
    the workers online."""
    from sluice.store import ui_queries

    span, width = RANGES[range]
    now = time.time()
    until = (now // width + 1) * width
    since = until - span
    heard_since = now - backend.settings.heartbeat_timeout

    def read(conn: Connection) -> dict[str, Any]:
        view = ui_queries.dashboard(conn, since, until, width, now, LATE_AFTER_SECONDS)
        view["workers_online"] = ui_queries.online_workers(conn, heard_since)
        return view

    body = backend.read(read)
    body["range"] = range
    return _body_tagged(request, body)


@router.get("/flows")
def flows(
    request: Request,
    backend: BackendDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    runs: Annotated[int, Query(ge=0, le=50)] = 10,
) -> Response:
    """Flows, newest first, each with its most recent runs."""
    from sluice.store import ui_queries

    body = backend.read(lambda conn: ui_queries.flows_with_runs(conn, offset, limit, runs))
    return _body_tagged(request, {"flows": body, "offset": offset, "limit": limit})


# -- flow runs ------------------------------------------------------------------------


@router.get("/flow_runs")
def list_flow_runs(request: Request, backend: BackendDep, flt: FilterDep) -> Response:
    """One page of flow runs (the ``/api/flow_runs`` filters) and how many match."""
    from sluice.store import queries

    def read(conn: Connection) -> dict[str, Any]:
        runs = queries.list_flow_runs(conn, flt)
        return {
            "runs": [_summary(run) for run in runs],
            "total": queries.count_flow_runs(conn, flt),
            "offset": flt.offset,
            "limit": flt.limit,
        }

    return _body_tagged(request, backend.read(read))


def _summary(run: FlowRunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "flow_name": run.flow_name,
        "state_type": run.state_type.value,
        "state_name": run.state_name,
        "state_message": run.state_message,
        "tags": run.tags,
        "run_count": run.run_count,
        "start_time": run.start_time.timestamp() if run.start_time else None,
        "end_time": run.end_time.timestamp() if run.end_time else None,
        "created": run.created.timestamp(),
        "parent_flow_run_id": run.parent_flow_run_id,
    }


@router.get("/flow_runs/{flow_run_id}")
def flow_run_detail(flow_run_id: str, request: Request, backend: BackendDep) -> Response:
    """A flow run with its state history, parent, subflow runs and task state counts."""
    from sluice.store import queries, ui_queries

    def read(conn: Connection) -> dict[str, Any]:
        run = queries.get_flow_run(conn, flow_run_id)
        parent = None
        if run.parent_flow_run_id:
            parent = ui_queries.run_brief(conn, run.parent_flow_run_id)
        return {
            "run": _record(run),
            "states": ui_queries.states_of(conn, run.id),
            "parent": parent,
            "children": ui_queries.child_runs(conn, run.id),
            "task_counts": ui_queries.task_state_counts(conn, run.id),
            "result": result_preview(run.result),
        }

    return _body_tagged(request, backend.read(read))


@router.get("/flow_runs/{flow_run_id}/graph")
def flow_run_graph(
    flow_run_id: str,
    request: Request,
    backend: BackendDep,
    expand: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> Response:
    """Task runs as graph nodes (mapped calls grouped) and edges, with times for the timeline."""
    from sluice.store import queries, ui_graph, ui_queries

    expanded = sorted(set(expand or ()))

    def version(conn: Connection) -> tuple[str, str]:
        run_id = queries.get_flow_run(conn, flow_run_id).id
        return run_id, ui_queries.task_runs_version(conn, run_id)

    run_id, token = backend.read(version)
    etag = _etag(f"graph:{run_id}:{token}:{expanded}")
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    body = backend.read(lambda conn: ui_graph.task_graph(conn, run_id, expanded, _edge_cache()))
    return _json(_dumps(body), etag)


@router.get("/flow_runs/{flow_run_id}/task_runs")
def flow_run_task_runs(
    flow_run_id: str,
    request: Request,
    backend: BackendDep,
    state: Annotated[list[StateType] | None, Query()] = None,
    group: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """One page of the flow run's task runs; ``group`` (``m:<call>:<task>``) keeps one .map call."""
    from sluice.store import queries, ui_queries

    states = [s.value for s in state or ()]
    chosen = ui_queries.parse_group(group) if group else None

    def version(conn: Connection) -> tuple[str, str]:
        run_id = queries.get_flow_run(conn, flow_run_id).id
        return run_id, ui_queries.task_runs_version(conn, run_id)

    run_id, token = backend.read(version)
    etag = _etag(f"tasks:{run_id}:{token}:{states}:{chosen}:{offset}:{limit}")
    unchanged = _not_modified(request, etag)
    if unchanged is not None:
        return unchanged
    body = backend.read(
        lambda conn: ui_queries.task_runs_page(
            conn, run_id, states=states, group=chosen, offset=offset, limit=limit
        ),
    )
    return _json(_dumps(body), etag)


@router.get("/flow_runs/{flow_run_id}/logs")
def flow_run_logs(
    flow_run_id: str,
    request: Request,
    backend: BackendDep,
    task_run_id: str | None = None,
    min_level: Annotated[int, Query(ge=0, le=100)] = 0,
    q: Annotated[str, Query(max_length=200)] = "",
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Log lines after ``after_id``, oldest first, filtered by level and text (``q``)."""
    from sluice.store import ui_queries

    body = backend.read(
        lambda conn: ui_queries.search_logs(
            conn,
            flow_run_id,
            task_run_id=task_run_id or None,
            min_level=min_level,
            text=q,
            after_id=after_id,
            limit=limit,
        ),
    )
    return _body_tagged(request, body)


# -- task runs ------------------------------------------------------------------------


@router.get("/task_runs/{task_run_id}")
def task_run_detail(task_run_id: str, request: Request, backend: BackendDep) -> Response:
    """A task run with its state history (every attempt), flow run, upstreams and result."""
    from sluice.store import queries, ui_queries

    def read(conn: Connection) -> dict[str, Any]:
        run = queries.get_task_run(conn, task_run_id)
        flow_run = ui_queries.run_brief(conn, run.flow_run_id) if run.flow_run_id else None
        return {
            "task_run": _record(run),
            "states": ui_queries.states_of(conn, run.id),
            "flow_run": flow_run,
            "upstream": ui_queries.task_run_briefs(conn, run.upstream_ids[:100]),
            "result": result_preview(run.result),
        }

    return _body_tagged(request, backend.read(read))
