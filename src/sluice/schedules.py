"""Schedules for deployments, written the way Prefect's ``prefect.schedules`` writes them.

Example::

    from sluice.schedules import Cron, Interval

    my_flow.serve(
        name="reports",
        schedules=[
            Cron("0 6 * * *", timezone="Europe/London", parameters={"region": "eu"}),
            Cron("0 6 * * *", timezone="America/New_York", parameters={"region": "us"}),
            Interval(3600, active=False),
        ],
    )

Each schedule has its own ``parameters`` (they update the deployment's defaults
for the runs that schedule creates), ``active`` (an inactive one creates no
runs), ``slug`` (a name for it, unique in its deployment) and ``timezone``
(IANA, default UTC). ``flow.deploy(schedules=[...])`` and ``sluice.yaml``'s
``schedules:`` take the same. The tick math (DST rules, catch-up, idempotency)
is :mod:`sluice.scheduling.schedules`.

Differences from Prefect: an ``Interval`` without ``anchor_date`` is anchored
at 2020-01-01 00:00 in its timezone (Prefect: the moment it is constructed),
so serving or deploying again never shifts the phase of its ticks.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import TYPE_CHECKING, Any

from sluice.errors import ScheduleError
from sluice.scheduling.schedule_options import ScheduleOptions, canonical_schedule, stored_schedule
from sluice.scheduling.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

if TYPE_CHECKING:
    from sluice.scheduling.schedule_options import ScheduleOptions
    from sluice.scheduling.schedules import Schedule as KindSchedule


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A deployment's schedule: exactly one of ``interval``, ``cron``, ``rrule``,
    with its options. Build one with :func:`Cron`, :func:`Interval` or :func:`RRule`.

    Raises:
        ScheduleError: (a ``ValueError``) no kind or several, a bad cron
            expression, rule, interval, timezone or option.
    """

    interval: _dt.timedelta | None = None
    cron: str | None = None
    rrule: str | None = None
    timezone: str | None = None
    anchor_date: _dt.datetime | None = None
    day_or: bool = True
    active: bool = True
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    slug: str | None = None

    def __post_init__(self) -> None:
        kinds = [k for k in ("interval", "cron", "rrule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ScheduleError(
                f"a schedule has exactly one of interval, cron, rrule (got {found})"
            )
        self.to_dict()  # validates the kind and the options

    def kind_schedule(self) -> KindSchedule:
        """The cron, interval or rrule schedule the scheduler computes ticks of."""
        zone = self.timezone or "UTC"
        if self.cron is not None:
            return CronSchedule(cron=self.cron, timezone=zone, day_or=self.day_or)
        if self.rrule is not None:
            return RRuleSchedule(rrule=self.rrule, timezone=zone)
        assert self.interval is not None
        return IntervalSchedule(interval=self.interval, anchor_date=self.anchor_date, timezone=zone)

    def options(self) -> ScheduleOptions:
        """Its parameters, active flag and slug."""
        return ScheduleOptions(dict(self.parameters), self.active, self.slug)

    def to_dict(self) -> dict[str, Any]:
        """The form a deployment stores (see :mod:`sluice.scheduling.schedule_options`)."""
        return canonical_schedule(stored_schedule(self.kind_schedule(), self.options()))


def Cron(
    cron: str,
    /,
    timezone: str | None = None,
    day_or: bool = True,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A schedule firing when the wall-clock time in ``timezone`` matches ``cron``
    (5 fields). ``day_or=False``: a restricted day of month and day of week must
    both match (``0 9 8-14 * 5``: the second Friday)."""
    return Schedule(
        cron=cron,
        timezone=timezone,
        day_or=day_or,
        active=active,
        parameters=dict(parameters or {}),
        slug=slug,
    )


def Interval(
    interval: _dt.timedelta | float | int,
    /,
    anchor_date: _dt.datetime | None = None,
    timezone: str | None = None,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A schedule firing every ``interval`` (a timedelta, or seconds), in phase with
    ``anchor_date`` (default 2020-01-01 00:00 in ``timezone``)."""
    if not isinstance(interval, _dt.timedelta):
        interval = _dt.timedelta(seconds=interval)
    return Schedule(
        interval=interval,
        anchor_date=anchor_date,
        timezone=timezone,
        active=active,
        parameters=dict(parameters or {}),
        slug=slug,
    )


def RRule(
    rrule: str,
    /,
    timezone: str | None = None,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A schedule firing on the occurrences of an RFC 5545 rule
    (``FREQ=MONTHLY;BYDAY=2FR``; a leading ``RRULE:`` is fine) in ``timezone``."""
    return Schedule(
        rrule=rrule,
        timezone=timezone,
        active=active,
        parameters=dict(parameters or {}),
        slug=slug,
    )


__all__ = ["Cron", "Interval", "RRule", "Schedule"]
