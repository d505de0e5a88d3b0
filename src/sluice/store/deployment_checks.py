"""Checking deployment settings and building the records of runs of deployments.

Pure: no I/O. Used by the implementations of the deployment operations
(:mod:`sluice.store.deployment_operations`), which the server runs too, so
the same checks hold for every way in.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from sluice.errors import InvalidInputError
from sluice.schemas import (
    SKIPPED_STATE,
    DeploymentRecord,
    FlowRunRecord,
    new_id,
    scheduled_key,
)
from sluice.states import StateType


def check_name(what: str, value: Any) -> None:
    """Refuse a name people could not type back or see: empty or blank, with
    whitespace around it, holding '/' (names are paths: ``FLOW/NAME``, URLs) or
    control characters.

    Args:
        what: the name's owner for the message, e.g. ``"a work pool's name"``.

    Raises:
        InvalidInputError: saying which rule the name breaks.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must not be empty: {value!r}")
    if value != value.strip():
        raise InvalidInputError(f"{what} must not start or end with whitespace: {value!r}")
    if "/" in value:
        raise InvalidInputError(f"{what} must not contain '/': {value!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInputError(f"{what} must not contain control characters: {value!r}")


def check_deployment(rec: DeploymentRecord) -> None:
    """Refuse a deployment that could never be found or run.

    Raises:
        InvalidInputError: a bad name, entrypoint or limit (one line; a ValueError).
        ParameterValidationError: default parameters that do not fit the schema
            (missing required ones count only for a deployment with schedules).
    """
    check_name("a deployment's name", rec.name)
    check_name("a deployment's flow name", rec.flow_name)
    if not rec.entrypoint or ":" not in rec.entrypoint:
        raise InvalidInputError(
            f"a deployment's entrypoint is 'path/file.py:function' or 'module:function', "
            f"not {rec.entrypoint!r}"
        )
    if not rec.work_pool_name or not rec.work_queue_name:
        raise InvalidInputError("a deployment needs a work pool and queue name")
    check_limits(
        {
            "description": rec.description,
            "version": rec.version,
            "working_dir": rec.working_dir,
            "tags": rec.tags,
            "parameters": rec.parameters,
            "concurrency_limit": rec.concurrency_limit,
            "max_active_runs": rec.max_active_runs,
            "paused": rec.paused,
            "catchup": rec.catchup,
        }
    )
    from sluice.parameter_schemas import check_deployment_parameters, check_schema_shape

    check_schema_shape(rec.parameter_schema)
    check_deployment_parameters(rec.flow_name, rec.parameter_schema, rec.parameters, rec.schedules)


def normalized_schedules(schedules: Any) -> list[dict[str, Any]]:
    """Each schedule (a mapping, as stored) parsed and written back in its canonical form.

    Raises:
        ScheduleError: not a list, or a schedule that cannot be read (a ValueError).
    """
    from sluice.errors import ScheduleError
    from sluice.scheduling.schedule_options import canonical_schedules

    if not isinstance(schedules, (list, tuple)):
        raise ScheduleError(f"schedules must be a list of schedules, not {schedules!r}")
    return canonical_schedules(schedules)


_TEXT_FIELDS = ("description", "version", "working_dir")


def check_limits(changes: Mapping[str, Any]) -> None:
    """Check the types of settings a caller gives (one-line ValueErrors).

    Limits are None (no limit) or a whole number >= 0; priorities whole
    numbers; flags true or false; texts text or None; tags a list of text;
    parameters a mapping.
    """
    for key in _TEXT_FIELDS:
        if key in changes and changes[key] is not None and type(changes[key]) is not str:
            raise InvalidInputError(f"{key} must be text or null, not {changes[key]!r}")
    if "tags" in changes:
        tags = changes["tags"]
        if not isinstance(tags, (list, tuple)) or any(type(t) is not str for t in tags):
            raise InvalidInputError(f"tags must be a list of text, not {tags!r}")
    if "parameters" in changes and not isinstance(changes["parameters"], dict):
        raise InvalidInputError(f"parameters must be a mapping, not {changes['parameters']!r}")
    for key in ("concurrency_limit", "max_active_runs"):
        value = changes.get(key)
        if value is not None and (type(value) is not int or not 0 <= value < 2**31):
            raise InvalidInputError(
                f"{key} must be a whole number >= 0 (or null: none), not {value!r}"
            )
    if "priority" in changes and (
        type(changes["priority"]) is not int or abs(changes["priority"]) >= 2**31
    ):
        raise InvalidInputError(f"priority must be a whole number, not {changes['priority']!r}")
    for key in ("paused", "catchup"):
        if key in changes and type(changes[key]) is not bool:
            raise InvalidInputError(f"{key} must be true or false, not {changes[key]!r}")


def new_deployment_run(
    dep: DeploymentRecord,
    parameters: Mapping[str, Any] | None,
    *,
    now: _dt.datetime,
    idempotency_key: str | None = None,
    scheduled_start_time: _dt.datetime | None = None,
    tags: Sequence[str] | None = None,
    parent_flow_run_id: str | None = None,
    parent_task_run_id: str | None = None,
    name: str | None = None,
    job_variables: Mapping[str, Any] | None = None,
    state_type: StateType = StateType.SCHEDULED,
    state_name: str = "Scheduled",
    state_message: str | None = None,
) -> FlowRunRecord:
    """The record of a new run of ``dep`` (nothing is written).

    Raises:
        ParameterValidationError: the merged parameters do not fit the schema.
        ValueError: ``job_variables`` of the wrong shape.
    """
    from sluice.job_variables import check_job_variables
    from sluice.parameter_schemas import check_parameters
    from sluice.utilities.names import generate_run_name

    merged = {**dep.parameters, **(parameters or {})}
    check_parameters(dep.flow_name, dep.parameter_schema, merged)
    variables = check_job_variables(job_variables)
    return FlowRunRecord(
        id=new_id(),
        flow_name=dep.flow_name,
        name=name or generate_run_name(),
        parameters=merged,
        tags=sorted(set(dep.tags) | set(tags or ())),
        state_type=state_type,
        state_name=state_name,
        state_message=state_message,
        created=now,
        updated=now,
        parent_flow_run_id=parent_flow_run_id,
        parent_task_run_id=parent_task_run_id,
        flow_version=dep.version,
        entrypoint=dep.entrypoint,
        deployment_id=dep.id,
        work_pool_name=dep.work_pool_name,
        work_queue_name=dep.work_queue_name,
        scheduled_start_time=scheduled_start_time or now,
        idempotency_key=idempotency_key,
        end_time=now if state_type is StateType.CANCELLED else None,
        job_variables=variables,
    )


def tick_runs(
    dep: DeploymentRecord,
    at: _dt.datetime,
    now: _dt.datetime,
    tags: Sequence[str] | None,
    skipped: str | None = None,
) -> list[FlowRunRecord]:
    """The runs of the schedule tick ``at`` (Skipped records when ``skipped`` says why).

    One run, unless schedules with their own parameters tick at ``at``: then
    one per distinct parameter set, each with the deployment's defaults
    updated with that set (see :mod:`sluice.scheduling.schedule_options`).
    """
    from sluice.scheduling.schedule_options import parameters_variant, tick_parameters

    runs = []
    for parameters in tick_parameters(dep.schedules, at):
        run = new_deployment_run(
            dep,
            parameters,
            now=now,
            idempotency_key=scheduled_key(at, parameters_variant(parameters)),
            scheduled_start_time=at.astimezone(_dt.timezone.utc),
            tags=tags,
        )
        if skipped is not None:
            run = dataclasses.replace(
                run,
                state_type=StateType.CANCELLED,
                state_name=SKIPPED_STATE,
                state_message=skipped,
                end_time=now,
            )
        runs.append(run)
    return runs
