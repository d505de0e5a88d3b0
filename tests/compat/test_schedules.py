"""``serve(schedules=[...])`` with per-schedule parameters and ``flow_run_name``, as
Prefect's docs write them: each schedule's runs take its parameters and are named
by the flow's template; an inactive schedule creates nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.factory import get_backend
from sluice.errors import NotFoundError
from sluice.states import StateType
from tests.compat.porting import write_ported
from tests.worker_helpers import wait_for, worker_env

pytestmark = pytest.mark.integration

SERVED = """
    from datetime import datetime, timedelta, timezone

    from prefect import flow
    from prefect.schedules import Cron, Interval


    @flow(flow_run_name="forecast-{city}-{days}d")
    def forecast(city: str, days: int = 3) -> str:
        return f"{city} for {days} days"


    if __name__ == "__main__":
        anchor = datetime(2024, 1, 1, tzinfo=timezone.utc)
        forecast.serve(
            name="cities",
            parameters={"days": 5},
            schedules=[
                Interval(timedelta(seconds=5), anchor_date=anchor, parameters={"city": "Oslo"}),
                Interval(5, anchor_date=anchor, parameters={"city": "Lima", "days": 2}),
                Interval(5, parameters={"city": "Nowhere"}, active=False),
                Cron("0 0 1 1 *", timezone="America/Chicago", parameters={"city": "Chicago"}),
            ],
        )
"""


def test_served_schedules_run_with_their_own_parameters_and_names(tmp_path: Path) -> None:
    script = write_ported(tmp_path, "served.py", SERVED)
    log = tmp_path / "serve.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=worker_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    backend: Any = get_backend()

    def both_cities_ran() -> set[tuple[str, int]] | None:
        try:
            runs = backend.list_deployment_runs(
                "forecast/cities", state_types=[StateType.COMPLETED], limit=0
            )
        except NotFoundError:
            return None
        done = {(r.name, r.parameters["days"]) for r in runs}
        return done if len({name for name, _ in done}) >= 2 else None

    try:
        done = wait_for(both_cities_ran, 90, "a run of each active schedule", poll=0.2)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0, log.read_text()
    assert done == {("forecast-Lima-2d", 2), ("forecast-Oslo-5d", 5)}
    every = backend.list_deployment_runs("forecast/cities", limit=0)
    assert "Nowhere" not in {r.parameters["city"] for r in every}
    dep = backend.read_deployment("forecast/cities")
    assert [s.get("active", True) for s in dep.schedules] == [True, True, False, True]
    assert dep.schedules[3]["parameters"] == {"city": "Chicago"}
