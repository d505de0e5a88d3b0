"""Deployments: a flow's entrypoint with parameters, schedules and a work pool.

The schedule math (cron, interval, rrule, timezones and DST, run planning) lives in
:mod:`sluice.deployments.schedules`; it is pure and takes "now" as an argument.
Nothing here is imported by ``import sluice``.
"""
