"""``sluice.schedules`` (Cron, Interval, RRule with their own parameters, active, slug)
through ``deploy``, the scheduler, backfills and ``sluice.yaml``, as Prefect documents them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sluice import flow
from sluice.backend.factory import get_backend
from sluice.deployments.scheduler import schedule_due_runs
from sluice.errors import ParameterValidationError, ScheduleError
from sluice.schedules import Cron, Interval, RRule, Schedule

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@flow
def report(region: str, n: int = 1) -> str:
    return f"{region}:{n}"


def test_constructors_make_validated_schedules() -> None:
    daily = Cron("0 6 * * *", timezone="Europe/London", parameters={"region": "eu"}, slug="eu")
    assert (daily.cron, daily.timezone, daily.day_or, daily.active) == (
        "0 6 * * *",
        "Europe/London",
        True,
        True,
    )
    assert daily.parameters == {"region": "eu"} and daily.slug == "eu"
    assert Interval(90).interval == dt.timedelta(seconds=90)
    assert Interval(dt.timedelta(hours=1), active=False).active is False
    assert RRule("RRULE:FREQ=MONTHLY;BYDAY=2FR", timezone="America/Chicago").rrule
    for bad in (
        lambda: Cron("61 * * * *"),
        lambda: Cron("0 6 * * *", timezone="Mars/Olympus"),
        lambda: RRule("FREQ=NOPE"),
        lambda: Interval(0),
        lambda: Schedule(cron="0 6 * * *", rrule="FREQ=DAILY"),
        lambda: Schedule(),
        lambda: Cron("0 6 * * *", parameters=["not", "a", "mapping"]),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ScheduleError, match="exactly one"):
        report.deploy("both", cron="0 6 * * *", interval=60)


def test_deploy_with_schedules_and_the_scheduler_applies_each_schedules_parameters() -> None:
    anchor = T0 - dt.timedelta(hours=1)
    dep = report.deploy(
        "regions",
        schedules=[
            Interval(300, anchor_date=anchor, parameters={"region": "eu"}, slug="eu"),
            Interval(300, anchor_date=anchor, parameters={"region": "us", "n": 2}),
            Interval(60, anchor_date=anchor, parameters={"region": "off"}, active=False),
        ],
    )
    assert [s.get("slug") for s in dep.schedules] == ["eu", None, None]
    assert dep.schedules[2]["active"] is False
    backend = get_backend()
    report_ = schedule_due_runs(backend, now=T0, horizon=dt.timedelta(minutes=10))
    assert report_.errors == {}
    runs = backend.list_deployment_runs(dep.id)
    ticks = sorted({r.scheduled_start_time for r in runs})
    assert ticks == [T0, T0 + dt.timedelta(minutes=5)]
    by_tick = {
        t: sorted(
            (r.parameters["region"], r.parameters.get("n"))
            for r in runs
            if r.scheduled_start_time == t
        )
        for t in ticks
    }
    assert by_tick[T0] == [("eu", None), ("us", 2)]  # the inactive schedule made nothing
    # Passes are idempotent: the same runs, however many times the scheduler looks.
    schedule_due_runs(backend, now=T0, horizon=dt.timedelta(minutes=10))
    assert len(backend.list_deployment_runs(dep.id)) == len(runs)


def test_a_required_parameter_given_by_every_schedule_is_enough() -> None:
    report.deploy(
        "each",
        schedules=[
            Cron("0 6 * * *", parameters={"region": "eu"}),
            Cron("0 7 * * *", parameters={"region": "us"}),
        ],
    )
    with pytest.raises(ParameterValidationError, match="region: missing required"):
        report.deploy("missing", schedules=[Cron("0 6 * * *", parameters={"n": 3})])


def test_cron_interval_and_rrule_flags_take_lists_and_client_schema_classes_work() -> None:
    from sluice.client.schemas.schedules import IntervalSchedule

    two = report.deploy("twice", cron=["0 6 * * *", "0 18 * * *"], parameters={"region": "x"})
    assert [s["cron"] for s in two.schedules] == ["0 6 * * *", "0 18 * * *"]
    legacy = report.deploy(
        "legacy",
        schedule=IntervalSchedule(interval=dt.timedelta(minutes=10)),
        parameters={"region": "x"},
    )
    assert legacy.schedules[0]["interval"] == 600


def test_backfill_runs_take_their_schedules_parameters() -> None:
    from sluice.deployments.backfills import backfill

    report.deploy(
        "filled",
        schedules=[
            Cron("0 6 * * *", parameters={"region": "eu"}),
            Cron("0 6 * * *", parameters={"region": "us"}, active=False),
        ],
    )
    done = backfill("report/filled", T0, T0 + dt.timedelta(days=2))
    assert done.ticks == [
        dt.datetime(2026, 3, 3, 6, tzinfo=UTC),
        dt.datetime(2026, 3, 4, 6, tzinfo=UTC),
    ]
    runs = get_backend().list_deployment_runs("report/filled")
    assert sorted(r.parameters["region"] for r in runs) == ["eu", "eu"]


def test_project_file_schedules_written_as_in_prefect_yaml(tmp_path: Path) -> None:
    from sluice.deployments.specs import load_project_file

    (tmp_path / "flows.py").write_text(
        "from sluice import flow\n\n@flow\ndef hello(who: str) -> str:\n    return who\n"
    )
    (tmp_path / "sluice.yaml").write_text(
        "deployments:\n"
        "  - name: twice-daily\n"
        "    entrypoint: flows.py:hello\n"
        "    schedules:\n"
        "      - cron: '0 6 * * *'\n"
        "        timezone: Europe/Paris\n"
        "        parameters: {who: morning}\n"
        "      - interval: 43200\n"
        "        parameters: {who: noon}\n"
        "        active: false\n"
    )
    (spec,) = load_project_file(tmp_path / "sluice.yaml")
    dep = spec.apply()
    assert [s["kind"] for s in dep.schedules] == ["cron", "interval"]
    assert dep.schedules[0]["parameters"] == {"who": "morning"}
    assert dep.schedules[1]["active"] is False
