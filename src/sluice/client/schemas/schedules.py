"""The schedule classes under Prefect's ``prefect.client.schemas.schedules`` path
(``schedules=[IntervalSchedule(interval=timedelta(minutes=10))]``); they are the
ones in :mod:`sluice.scheduling.schedules`."""

from sluice.scheduling.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

__all__ = ["CronSchedule", "IntervalSchedule", "RRuleSchedule"]
