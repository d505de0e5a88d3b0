"""``/api/ui`` for deployments and work pools: the views their pages poll and the
two actions whose answers the UI needs shaped for a form.

The views carry ETags like the rest of ``/api/ui`` (see :mod:`ui_data`).
Creating a run answers a 422 with one entry per rejected parameter, so the
form can show each problem next to its field; a backfill answers how many
runs it created; replacing a deployment's schedules answers a 422 naming
each bad field (``schedules.0.value``, ``schedules.1.timezone``). Everything
else the pages do (pause, resume) goes to the plain record API.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sluice.backend.protocol import Backend
from sluice.errors import ParameterValidationError
from sluice.schemas import DeploymentRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.refusals import no_nul_in_url, refusals, refuse_nul
from sluice.server.api.route_table import RouteTable
from sluice.server.api.ui_data import _body_tagged, _record_json

if TYPE_CHECKING:
    from sqlalchemy import Connection

router = RouteTable(prefix="/ui", tags=["ui"], dependencies=[Depends(no_nul_in_url)])

#: upcoming runs listed per deployment on the list page and the detail page
NEXT_RUNS = 3
DETAIL_RUNS = 10
#: most schedule ticks one backfill from the UI may create
MAX_BACKFILL_TICKS = 10_000
#: most schedules the editor may give one deployment
MAX_SCHEDULES = 50


class RunForm(BaseModel):
    """The Run form: parameters as the browser parsed them from its inputs."""

    parameters: dict[str, Any] = Field(default_factory=dict)


class BackfillForm(BaseModel):
    """The Backfill form: a range of schedule ticks, optionally a few at a time."""

    start: AwareDatetime
    end: AwareDatetime
    max_active: int | None = Field(default=None, ge=1, le=10_000)


class ScheduleRow(BaseModel):
    """One schedule of the schedules editor: ``value`` is the cron expression, the
    interval (seconds, or ``90s``, ``15m``, ``1h30m``, ``1d``) or the RFC 5545 rule."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cron", "interval", "rrule"]
    value: str
    timezone: str = "UTC"
    #: an interval's phase, kept from the schedule being edited (None: the default)
    anchor_date: str | None = None
    #: the schedule's own options, kept from the schedule being edited
    parameters: dict[str, Any] | None = None
    active: bool = True
    slug: str | None = None


class SchedulesForm(BaseModel):
    """The schedules editor: the deployment's new schedules (they replace the old ones)."""

    model_config = ConfigDict(extra="forbid")

    schedules: list[ScheduleRow] = Field(default_factory=list, max_length=MAX_SCHEDULES)


def _key(flow_name: str, name: str) -> str:
    return f"{flow_name}/{name}"


def _schedule_texts(dep: DeploymentRecord) -> list[dict[str, Any]]:
    from sluice.scheduling.schedule_options import describe_stored

    texts = []
    for stored in dep.schedules:
        try:
            text = describe_stored(stored, with_active=False)
        except ValueError as exc:  # a stored schedule this version cannot read
            text = f"unreadable schedule ({exc})"
        texts.append({"text": text, "active": stored.get("active", True)})
    return texts


def _deployment_view(dep: DeploymentRecord) -> dict[str, Any]:
    view = _record_json(dep)
    view["full_name"] = dep.full_name
    view["schedule_texts"] = _schedule_texts(dep)
    return view


@router.get("/deployments")
def deployments(request: Request, backend: BackendDep) -> Response:
    """Every deployment with its schedules in words and its next Scheduled runs."""
    from sluice.store import ui_queries

    found = backend.list_deployments(limit=0)

    def upcoming(conn: Connection) -> list[list[dict[str, Any]]]:
        return [
            ui_queries.deployment_runs(conn, d.id, upcoming=True, limit=NEXT_RUNS) for d in found
        ]

    nexts = backend.read(upcoming)
    views = [{**_deployment_view(d), "next_runs": n} for d, n in zip(found, nexts, strict=True)]
    return _body_tagged(request, {"deployments": views})


@router.get("/deployments/{flow_name}/{name}")
def deployment_detail(flow_name: str, name: str, request: Request, backend: BackendDep) -> Response:
    """A deployment, its schedules in words, its upcoming and its recent runs, its pool."""
    from sluice.store import ui_queries

    dep = backend.read_deployment(_key(flow_name, name))

    def runs(conn: Connection) -> dict[str, Any]:
        return {
            "upcoming": ui_queries.deployment_runs(conn, dep.id, upcoming=True, limit=DETAIL_RUNS),
            "recent": ui_queries.deployment_runs(conn, dep.id, upcoming=False, limit=DETAIL_RUNS),
        }

    body = {"deployment": _deployment_view(dep), **backend.read(runs)}
    return _body_tagged(request, body)


@router.post("/deployments/{flow_name}/{name}/runs", status_code=201)
def run_deployment(flow_name: str, name: str, body: RunForm, backend: BackendDep) -> Response:
    """Create a run now; a 422 lists ``fields`` (parameter, problem) for the form."""
    refuse_nul(body.parameters)
    with refusals():
        try:
            run = backend.create_flow_run_from_deployment(_key(flow_name, name), body.parameters)
        except ParameterValidationError as exc:
            return _field_errors(exc)
    return JSONResponse({"id": run.id, "name": run.name}, status_code=201)


def _field_errors(exc: ParameterValidationError) -> Response:
    fields = [{"field": f, "message": m} for f, m in exc.errors]
    return JSONResponse({"detail": str(exc), "fields": fields}, status_code=422)


@router.put("/deployments/{flow_name}/{name}/schedules")
def replace_schedules(
    flow_name: str, name: str, body: SchedulesForm, backend: BackendDep
) -> Response:
    """Replace the deployment's schedules (upcoming runs of the old ones go, planning
    restarts); a 422 lists ``fields`` (``schedules.<i>.value|timezone``, problem)."""

    refuse_nul(body.model_dump())
    dep = backend.read_deployment(_key(flow_name, name))
    schedules, problems = _schedules_of(body.schedules)
    if problems:
        fields = [{"field": f, "message": m} for f, m in problems]
        detail = "; ".join(f"{f}: {m}" for f, m in problems)
        return JSONResponse({"detail": detail, "fields": fields}, status_code=422)
    with refusals():
        # Only the schedules: a pause or limit changed since the page loaded stays.
        saved = backend.update_deployment(dep.id, {"schedules": schedules})
    return JSONResponse(_deployment_view(saved))


def _schedules_of(rows: list[ScheduleRow]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The stored (canonical) form of each row, and each problem as (field, message)."""
    from sluice.errors import ScheduleError
    from sluice.scheduling.schedule_options import canonical_schedule, canonical_schedules
    from sluice.scheduling.wallclock import load_zone

    schedules: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []
    for i, row in enumerate(rows):
        zone = row.timezone.strip() or "UTC"
        try:
            load_zone(zone, "timezone")
        except ScheduleError as exc:
            problems.append((f"schedules.{i}.timezone", str(exc).removeprefix("timezone: ")))
            zone = "UTC"  # still check the value, on its own
        stored: dict[str, Any] = {"kind": row.kind, row.kind: row.value.strip(), "timezone": zone}
        if row.kind == "interval" and row.anchor_date:
            stored["anchor_date"] = row.anchor_date
        stored.update(parameters=row.parameters, active=row.active, slug=row.slug)
        try:
            schedules.append(canonical_schedule(stored))
        except ScheduleError as exc:
            problems.append((f"schedules.{i}.value", str(exc)))
    if not problems:
        try:
            canonical_schedules(schedules)  # two schedules with one slug
        except ScheduleError as exc:
            problems.append(("schedules", str(exc)))
    return schedules, problems


@router.post("/deployments/{flow_name}/{name}/backfill")
def backfill(flow_name: str, name: str, body: BackfillForm, backend: BackendDep) -> dict[str, Any]:
    """Create one run per schedule tick in ``[start, end]``. With ``max_active`` the
    runs are created a few at a time in the background; the answer counts the ticks."""
    from sluice.deployments.backfills import backfill as run_backfill
    from sluice.deployments.backfills import backfill_ticks
    from sluice.scheduling.schedule_options import active_schedules

    dep = backend.read_deployment(_key(flow_name, name))
    with refusals():
        schedules = active_schedules(dep.schedules)
        if not schedules:
            which = "active schedule" if dep.schedules else "schedule"
            raise ValueError(f"deployment {dep.full_name} has no {which} to backfill")
        ticks = backfill_ticks(schedules, body.start, body.end)
    if len(ticks) > MAX_BACKFILL_TICKS:
        raise HTTPException(
            422, f"the range holds {len(ticks)} schedule ticks; at most {MAX_BACKFILL_TICKS}"
        )
    if body.max_active is None:
        report = run_backfill(dep.id, body.start, body.end, backend=backend)
        return {"ticks": len(ticks), "created": report.created, "background": False}
    _start_background(run_backfill, dep.id, body.start, body.end, body.max_active, backend)
    return {"ticks": len(ticks), "created": None, "background": True}


def _start_background(
    run_backfill: Any,
    dep_id: str,
    start: _dt.datetime,
    end: _dt.datetime,
    max_active: int,
    backend: Backend,
) -> None:
    # A backfill with max_active waits for runs to finish before creating more:
    # that outlives a request, so a daemon thread carries it on (a server
    # restart stops it; running the same backfill again creates only what is missing).
    def work() -> None:
        import logging

        try:
            run_backfill(dep_id, start, end, max_active=max_active, backend=backend)
        except Exception:
            logging.getLogger("sluice.server").exception("backfill of %s stopped", dep_id)

    threading.Thread(target=work, name=f"backfill-{dep_id}", daemon=True).start()


@router.get("/work_pools")
def work_pools(request: Request, backend: BackendDep) -> Response:
    """Every pool with its queues (runs due and runs scheduled later in each) and its
    workers (online: a heartbeat within the timeout)."""
    from sluice.states import utcnow

    now = utcnow()
    timeout = backend.settings.heartbeat_timeout
    views = []
    for pool in backend.list_work_pools():
        depths = backend.read(_depths_reader(pool.name, now.timestamp()))
        none = {"due": 0, "later": 0}
        queues = [
            {**_record_json(q), **depths.get(q.name, none)}
            for q in backend.list_work_queues(pool.name)
        ]
        workers = [
            {**_record_json(w), "online": w.is_online()} for w in backend.list_workers(pool.name)
        ]
        views.append({**_record_json(pool), "queues": queues, "workers": workers})
    return _body_tagged(request, {"pools": views, "heartbeat_timeout": timeout})


def _depths_reader(pool_name: str, now: float) -> Callable[[Connection], dict[str, dict[str, int]]]:
    from sluice.store import ui_queries

    return lambda conn: ui_queries.queue_depths(conn, pool_name, now)
