"""Reading back what the engine recorded, through the real embedded store."""

from __future__ import annotations

from sluice.backend.factory import get_backend
from sluice.schemas import FlowRunFilter, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord


def flow_runs(flow_name: str | None = None) -> list[FlowRunRecord]:
    return get_backend().list_flow_runs(FlowRunFilter(flow_name=flow_name, limit=1000))


def only_flow_run(flow_name: str | None = None) -> FlowRunRecord:
    runs = [r for r in flow_runs(flow_name) if r.parent_flow_run_id is None]
    assert len(runs) == 1, runs
    return runs[0]


def task_runs(flow_run_id: str) -> list[TaskRunRecord]:
    return get_backend().read_task_runs(flow_run_id)


def state_names(run_id: str) -> list[str]:
    return [s.name for s in states(run_id)]


def states(run_id: str) -> list[StateRecord]:
    return get_backend().read_states(run_id)


def logs(flow_run_id: str) -> list[LogRecord]:
    return get_backend().read_logs(flow_run_id)


def log_text(flow_run_id: str) -> str:
    return "\n".join(line.message for line in logs(flow_run_id))
