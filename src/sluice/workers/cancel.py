"""Asking a flow run to stop, on the embedded store or a server.

A run not yet started becomes Cancelled at once; a running one becomes
Cancelling, and the worker running it stops its process (then Cancelled).
The same orchestration rules decide in both modes: the server applies them
to ``POST /api/flow_runs/{id}/cancel``, and embedded mode applies them here.
"""

from __future__ import annotations

from typing import Any

from sluice.schemas import FlowRunRecord


def cancel_flow_run(backend: Any, run_id: str) -> FlowRunRecord:
    """Cancel ``run_id`` (an id or unique prefix); the run afterwards.

    Raises:
        NotFoundError: no such run.
        TransitionRefused: the run already finished.
    """
    from sluice.states import utcnow

    call = getattr(backend, "_call", None)
    if call is not None:  # the HTTP client: the server decides
        from urllib.parse import quote

        run = backend.read_flow_run(run_id)
        record: FlowRunRecord = call(
            "POST", f"/api/flow_runs/{quote(run.id, safe='')}/cancel", FlowRunRecord
        )
        return record
    from sluice.server.actions import cancel_flow_run as cancel_in_store

    return cancel_in_store(backend, run_id, utcnow())
