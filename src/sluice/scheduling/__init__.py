"""Schedule math: cron, interval and rrule schedules as pure functions of a given time.

Nothing here does I/O or reads the clock: "now" is always an argument. The
deployment machinery (:mod:`sluice.deployments`), the store's checks of a
deployment's schedules and Prefect-style schedule objects (:mod:`sluice.schedules`)
all build on it, so it sits low in the layers (see docs/architecture.md).
"""
