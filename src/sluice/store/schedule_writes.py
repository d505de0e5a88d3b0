"""The scheduler's writes: Late runs, and ticks skipped under ``max_active_runs``.

Creating the runs of schedule ticks is :func:`sluice.store.deployment_writes.insert_deployment_runs`
(idempotent through the unique ``(deployment_id, idempotency_key)`` index).
Each function here runs in one write transaction and re-checks a run's state
in its UPDATE, so two schedulers racing change (and record) a run once.
"""

from __future__ import annotations

from sqlalchemy import Connection, false, select, update

from sluice.schemas import BACKFILL_TAG, SCHEDULED_KEY_PREFIX, SKIPPED_STATE
from sluice.states import StateType
from sluice.store import deployment_queries as dq
from sluice.store.deployment_writes import set_run_state
from sluice.store.rows import flow_run_from_row
from sluice.store.schema import deployment, flow_run


def mark_late_runs(conn: Connection, *, now: float, grace: float) -> list[str]:
    """Rename Scheduled runs of deployments not started within ``grace`` s to ``Late``.

    A run is late when both its scheduled time and its creation are more than
    ``grace`` seconds ago: a run backfilled for last year is not late the
    moment it is created. Late runs stay claimable. Returns the ids renamed.
    """
    cutoff = now - grace
    waiting = (
        flow_run.c.state_type == StateType.SCHEDULED.value,
        flow_run.c.state_name == "Scheduled",
        flow_run.c.deployment_id.is_not(None),
        flow_run.c.scheduled_start_time < cutoff,
        flow_run.c.created < cutoff,
    )
    ids = list(
        conn.execute(select(flow_run.c.id).where(*waiting).order_by(flow_run.c.id)).scalars()
    )
    marked: list[str] = []
    message = f"Not started within {grace:g} s of its scheduled time"
    for run_id in ids:
        done = conn.execute(
            update(flow_run).where(flow_run.c.id == run_id, *waiting).values(updated=now)
        )
        if done.rowcount == 1:
            set_run_state(conn, run_id, StateType.SCHEDULED, "Late", message, now)
            marked.append(run_id)
    return marked


def skip_runs_over_max_active(conn: Connection, *, now: float) -> list[str]:
    """Skip due schedule runs of deployments at their ``max_active_runs`` (without catchup).

    For each unpaused deployment with ``max_active_runs`` N and ``catchup``
    off: of its due schedule-created runs still waiting (Scheduled or Late),
    only the newest ``N - in_progress`` stay; older ones become ``Skipped``
    (a Cancelled-type state, with a message) instead of piling up behind a
    run that outlasts its interval. With catchup on they wait their turn (the
    claim honours the same limit). Backfilled runs are never skipped.
    Returns the ids skipped.
    """
    found = conn.execute(
        select(deployment.c.id, deployment.c.max_active_runs).where(
            deployment.c.max_active_runs.is_not(None),
            deployment.c.catchup == false(),
            deployment.c.paused == false(),
        )
    ).all()
    if not found:
        return []
    active = dq.count_active_runs(conn, flow_run.c.deployment_id, [r[0] for r in found])
    skipped: list[str] = []
    for dep_id, max_active in found:
        room = max(0, max_active - active.get(dep_id, 0))
        waiting = (
            flow_run.c.deployment_id == dep_id,
            flow_run.c.state_type == StateType.SCHEDULED.value,
            flow_run.c.state_name.in_(("Scheduled", "Late")),
            flow_run.c.scheduled_start_time <= now,
            flow_run.c.idempotency_key.startswith(SCHEDULED_KEY_PREFIX, autoescape=True),
        )
        rows = conn.execute(
            select(flow_run)
            .where(*waiting)
            .order_by(flow_run.c.scheduled_start_time.desc(), flow_run.c.id.desc())
        ).mappings()
        due = [r for r in map(flow_run_from_row, rows) if BACKFILL_TAG not in r.tags]
        message = (
            f"Skipped: the deployment already has {max_active} active run(s) "
            "(max_active_runs) and catchup is off"
        )
        for run in due[room:]:
            done = conn.execute(
                update(flow_run).where(flow_run.c.id == run.id, *waiting).values(updated=now)
            )
            if done.rowcount == 1:
                set_run_state(conn, run.id, StateType.CANCELLED, SKIPPED_STATE, message, now)
                skipped.append(run.id)
    return skipped
