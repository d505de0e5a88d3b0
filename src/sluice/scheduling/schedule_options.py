"""What a deployment's schedule carries besides its ticks: its own parameters,
whether it is active, and a slug naming it.

A stored schedule is the dict :func:`~sluice.scheduling.schedules.schedule_to_dict`
makes (``kind``, then the kind's fields), plus, only when they differ from the
defaults, ``parameters`` (a non-empty dict), ``active`` (``false``) and ``slug``.
So a schedule without options is stored exactly as before they existed.

Semantics (Prefect's):

* an inactive schedule creates no runs (the scheduler and backfills skip it);
* the run of a tick takes the deployment's default parameters updated with the
  parameters of the schedule that made the tick;
* ticks of several schedules at the same time make one run per distinct set
  of schedule parameters: schedules without parameters share the tick's usual
  run (idempotency key ``scheduled:<time>``), each parameter set gets its own
  (``scheduled:<time>#<digest of the parameters>``), so restarts and racing
  schedulers still create each run once.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sluice.errors import ScheduleError
from sluice.parameter_schemas import schedule_parameter_sets
from sluice.scheduling.schedules import (
    OPTION_KEYS,
    Schedule,
    describe,
    schedule_from_dict,
    schedule_to_dict,
    times_between,
)

_TICK = timedelta(microseconds=1)

__all__ = [
    "OPTION_KEYS",
    "ScheduleOptions",
    "active_schedules",
    "canonical_schedule",
    "canonical_schedules",
    "describe_stored",
    "options_from_dict",
    "options_to_dict",
    "parameter_sets",
    "parameters_variant",
    "stored_schedule",
    "tick_parameters",
]


@dataclass(frozen=True)
class ScheduleOptions:
    """A schedule's options (see the module docstring)."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True
    slug: str | None = None


def options_from_dict(d: Mapping[str, Any]) -> ScheduleOptions:
    """The options of a stored schedule (defaults where absent).

    Raises:
        ScheduleError: ``parameters`` not a mapping with text keys, ``active``
            not a boolean, ``slug`` not non-empty text.
    """
    parameters = d.get("parameters") or {}
    if not isinstance(parameters, Mapping) or not all(isinstance(k, str) for k in parameters):
        raise ScheduleError(f"schedule parameters must be a mapping of names, got {parameters!r}")
    active = d.get("active", True)
    if not isinstance(active, bool):
        raise ScheduleError(f"schedule active must be true or false, got {active!r}")
    slug = d.get("slug")
    if slug is not None and (not isinstance(slug, str) or not slug.strip()):
        raise ScheduleError(f"schedule slug must be non-empty text, got {slug!r}")
    return ScheduleOptions(dict(parameters), active, slug)


def options_to_dict(options: ScheduleOptions) -> dict[str, Any]:
    """The options that differ from the defaults, as stored."""
    out: dict[str, Any] = {}
    if options.parameters:
        out["parameters"] = dict(options.parameters)
    if not options.active:
        out["active"] = False
    if options.slug is not None:
        out["slug"] = options.slug
    return out


def stored_schedule(schedule: Schedule, options: ScheduleOptions | None = None) -> dict[str, Any]:
    """The stored form of a schedule and its options."""
    out = dict(schedule_to_dict(schedule))
    if options is not None:
        out.update(options_to_dict(options))
    return out


def canonical_schedule(d: Mapping[str, Any]) -> dict[str, Any]:
    """A stored schedule (or one given as a dict) checked and written back canonically.

    Raises:
        ScheduleError: the schedule or one of its options cannot be used.
    """
    return stored_schedule(schedule_from_dict(d), options_from_dict(d))


def canonical_schedules(schedules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`canonical_schedule` of each; two schedules may not share a slug.

    Raises:
        ScheduleError: naming the schedule at fault.
    """
    out = [canonical_schedule(d) for d in schedules]
    slugs = [d["slug"] for d in out if "slug" in d]
    for slug in slugs:
        if slugs.count(slug) > 1:
            raise ScheduleError(f"two schedules have the slug {slug!r}; a slug names one schedule")
    return out


def active_schedules(stored: Sequence[Mapping[str, Any]]) -> list[Schedule]:
    """The schedules that create runs (the active ones), parsed."""
    return [schedule_from_dict(d) for d in stored if d.get("active", True) is not False]


def parameter_sets(stored: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The distinct parameter sets of the active schedules (``{}`` for those without)."""
    return schedule_parameter_sets(stored)


def tick_parameters(stored: Sequence[Mapping[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """The parameter sets of the active schedules that tick at ``at``, one per distinct set.

    ``[{}]`` when no schedule has parameters (the common case: nothing to work
    out), or when none of them ticks at ``at`` (a time given by hand).
    """
    if all(not d.get("parameters") for d in stored):
        return [{}]
    found: list[dict[str, Any]] = []
    for d in stored:
        if d.get("active", True) is False:
            continue
        if not times_between(schedule_from_dict(d), at, at + _TICK, limit=1):
            continue
        params = dict(d.get("parameters") or {})
        if params not in found:
            found.append(params)
    return found or [{}]


def parameters_variant(parameters: Mapping[str, Any]) -> str | None:
    """What tells apart the runs of one tick made for different schedule parameters:
    None for no parameters, else a short digest of them (stable across processes)."""
    if not parameters:
        return None
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_stored(d: Mapping[str, Any], *, with_active: bool = True) -> str:
    """One line for people: the schedule, then its slug, parameters and (inactive)."""
    text = describe(schedule_from_dict(d))
    options = options_from_dict(d)
    if options.slug:
        text += f" [{options.slug}]"
    if options.parameters:
        text += " with parameters " + json.dumps(dict(options.parameters), default=str)
    if with_active and not options.active:
        text += " (inactive)"
    return text
