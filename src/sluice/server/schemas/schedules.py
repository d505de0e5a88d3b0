"""The schedule classes under the import path older deployment code uses
(``from sluice.server.schemas.schedules import CronSchedule``); they are the
ones in :mod:`sluice.scheduling.schedules`."""

from sluice.scheduling.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

__all__ = ["CronSchedule", "IntervalSchedule", "RRuleSchedule"]
