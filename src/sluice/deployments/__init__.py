"""Deployments: schedules, run_deployment, backfills (see the submodules)."""
