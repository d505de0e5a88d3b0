"""The backend and settings a command works with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice.cli.errors import CliError
from sluice.errors import NotFoundError
from sluice.schemas import FlowRunFilter
from sluice.settings import load_settings

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.settings import Settings


def load_cli_settings() -> Settings:
    """Settings from the config file and environment, read when a command runs."""
    return load_settings()


def cli_backend(settings: Settings | None = None, detect_crashes: bool = False) -> Backend:
    """The process's shared backend for the configured database.

    With ``detect_crashes``, Running runs whose heartbeat lapsed are marked
    Crashed first. Imported lazily: the store pulls in SQLAlchemy, which ``sluice --help`` and
    ``sluice config`` must not pay for. Not closed by the command: it is the
    same object the engine records through (``sluice run``), and the factory
    flushes and closes it at interpreter exit.
    """
    from sluice.backend.factory import get_backend

    resolved = settings or load_cli_settings()
    backend = get_backend(resolved)
    if detect_crashes:
        # Whoever looks marks runs whose process went silent: a listing must not
        # show a run as Running forever after its machine died.
        from sluice.engine.heartbeat import detect_crashed_runs

        detect_crashed_runs(backend, resolved)
    return backend


def entrypoint_of_known_flow(flow_name: str) -> str:
    """A flow given by name (``my-flow`` or ``my_flow``): the entrypoint its latest
    recorded run was loaded from, else that of one of its deployments.

    Raises:
        CliError: the flow is unknown, or no run or deployment says where its code is.
    """
    backend = cli_backend()
    hint = f"flow {flow_name!r} not found; give its entrypoint: path/to/file.py:function"
    try:
        flow = backend.read_flow(flow_name)
    except NotFoundError:
        raise CliError(hint) from None
    for run in backend.list_flow_runs(FlowRunFilter(flow_name=flow.name, limit=50)):
        if run.entrypoint:
            return run.entrypoint
    for dep in backend.list_deployments(flow_name=flow.name, limit=1):
        return str(dep.entrypoint)
    raise CliError(hint)
