"""Creating or updating a deployment from a flow object (``Flow.deploy``).

The deployment records where the flow's code is (``entrypoint``, relative to
``working_dir`` when the file lies under it), the JSON schema of its
parameters (from its signature), and its schedules in canonical form.
Re-deploying the same ``FLOW/NAME`` replaces its settings and schedules.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.backend.factory import get_backend
from sluice.deployments.parameters import parameter_schema_of
from sluice.engine.flow_setup import entrypoint_of
from sluice.errors import ScheduleError
from sluice.schedules import Schedule as ScheduleWithOptions
from sluice.scheduling.schedule_options import canonical_schedules, stored_schedule
from sluice.scheduling.schedules import parse_schedule, schedule_to_dict
from sluice.schemas import DeploymentRecord

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.flows import Flow


def deploy(
    flow: Flow[..., Any],
    *,
    name: str,
    work_pool_name: str = "default",
    work_queue_name: str = "default",
    cron: str | Sequence[str] | None = None,
    interval: float | str | _dt.timedelta | Sequence[float | str | _dt.timedelta] | None = None,
    anchor_date: _dt.datetime | str | None = None,
    rrule: str | Sequence[str] | None = None,
    timezone: str | None = None,
    schedule: Any = None,
    schedules: Sequence[Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    description: str | None = None,
    version: str | None = None,
    paused: bool = False,
    concurrency_limit: int | None = None,
    max_active_runs: int | None = None,
    catchup: bool = False,
    entrypoint: str | None = None,
    working_dir: str | Path | None = None,
    backend: Backend | None = None,
) -> DeploymentRecord:
    """Create or update the deployment ``flow.name/name``; the stored deployment.

    Give at most one of ``cron``, ``interval`` (seconds, a timedelta, or
    ``"1h30m"``; optional ``anchor_date``) and ``rrule`` (all in ``timezone``,
    default UTC; each may be a list), and/or ``schedule``/``schedules``
    (:mod:`sluice.schedules` objects such as ``Cron("0 6 * * *",
    parameters={...})``, whose runs take their own parameters, or dicts).

    Raises:
        ScheduleError: a schedule or timezone that cannot be used.
        ParameterValidationError: default ``parameters`` that do not fit the flow.
        ValueError: an entrypoint that cannot be derived (a flow defined in a
            function or an interactive session: pass ``entrypoint=``), bad limits.
    """
    workdir = Path(working_dir or os.getcwd()).resolve()
    record = DeploymentRecord(
        name=name,
        flow_name=flow.name,
        entrypoint=entrypoint or _entrypoint(flow, workdir),
        working_dir=str(workdir),
        parameters=dict(parameters or {}),
        parameter_schema=parameter_schema_of(flow),
        tags=sorted(set(tags or ()) | set(flow.tags)),
        version=version or flow.options.version,
        description=description or flow.description,
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        schedules=build_schedules(
            cron=cron,
            interval=interval,
            anchor_date=anchor_date,
            rrule=rrule,
            timezone=timezone,
            schedule=schedule,
            schedules=schedules,
        ),
        paused=paused,
        concurrency_limit=concurrency_limit,
        max_active_runs=max_active_runs,
        catchup=catchup,
    )
    if backend is None:
        backend = get_backend()
    assert backend is not None
    return backend.upsert_deployment(record)


def build_schedules(
    *,
    cron: str | Sequence[str] | None = None,
    interval: float | str | _dt.timedelta | Sequence[float | str | _dt.timedelta] | None = None,
    anchor_date: _dt.datetime | str | None = None,
    rrule: str | Sequence[str] | None = None,
    timezone: str | None = None,
    schedule: Any = None,
    schedules: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """Schedules as stored: those given by flags (each of ``cron``, ``interval``,
    ``rrule`` may be a list, as in Prefect), then ``schedule``, then ``schedules``.

    A schedule object is a :mod:`sluice.schedules` one (``Cron(...)``, with its
    own parameters), a :mod:`sluice.scheduling.schedules` one, or its dict.

    Raises:
        ScheduleError: naming the flag or schedule at fault (two with one slug too).
    """
    flags = [f"--{k}" for k, v in (("cron", cron), ("interval", interval), ("rrule", rrule)) if v]
    if len(flags) > 1:
        raise ScheduleError(
            f"give exactly one of --cron, --interval, --rrule (got {', '.join(flags)}); "
            "several schedules go in schedules="
        )
    out: list[dict[str, Any]] = [
        *_flag_schedules("cron", cron, timezone),
        *_flag_schedules("interval", interval, timezone, anchor_date),
        *_flag_schedules("rrule", rrule, timezone),
    ]
    if anchor_date is not None and interval is None:
        raise ScheduleError(f"anchor_date {anchor_date!r}: only applies to an interval")
    given = [schedule] if schedule is not None else []
    out.extend(_stored(item) for item in [*given, *(schedules or ())])
    return canonical_schedules(out)


def _flag_schedules(
    flag: str, value: Any, timezone: str | None, anchor_date: Any = None
) -> list[dict[str, Any]]:
    if value is None:
        return []
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for one in values:
        if isinstance(one, _dt.timedelta):
            one = one.total_seconds()
        anchor = anchor_date.isoformat() if isinstance(anchor_date, _dt.datetime) else anchor_date
        parsed = parse_schedule(timezone=timezone, anchor=anchor, **{flag: one})
        out.append(dict(schedule_to_dict(parsed)))
    return out


def _stored(item: Any) -> dict[str, Any]:
    if isinstance(item, ScheduleWithOptions):
        return item.to_dict()
    if isinstance(item, Mapping):
        return dict(item)
    try:
        return stored_schedule(item)
    except ScheduleError:
        raise ScheduleError(
            f"not a schedule: {item!r} (use sluice.schedules.Cron, Interval or RRule)"
        ) from None


def _entrypoint(flow: Flow[..., Any], workdir: Path) -> str:
    """``path/file.py:attribute`` (relative to ``workdir`` when inside it) or ``module:attr``."""
    found = entrypoint_of(flow)
    if found is None:
        raise ValueError(
            f"cannot tell where flow {flow.name!r} is defined (inside a function, or in an "
            "interactive session); pass entrypoint='path/file.py:function'"
        )
    location, _, attribute = found.rpartition(":")
    path = Path(location)
    if path.is_absolute():
        try:
            location = path.relative_to(workdir).as_posix()
        except ValueError:
            location = path.as_posix()
    return f"{location}:{attribute}"
