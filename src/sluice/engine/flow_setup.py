"""Pieces of starting a flow run: its entrypoint, name, stored parameters and results."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import ResultIntegrityError, ResultMissingError, SerializationError
from sluice.results.owners import flow_result_owner, parameters_owner
from sluice.results.store import result_store_for
from sluice.utilities.names import generate_run_name
from sluice.utilities.process_identity import this_process

if TYPE_CHECKING:
    from sluice.flows import Flow
    from sluice.schemas import FlowRunRecord
    from sluice.settings import Settings


def entrypoint_of(flow: Flow[..., Any]) -> str | None:
    """Where to load ``flow`` from again: ``/abs/path/file.py:function`` or ``module:function``.

    None for flows a resume could not load (defined inside a function, or in an
    interactive session).
    """
    fn = flow.fn
    qualname = getattr(fn, "__qualname__", "")
    if "<locals>" in qualname or not qualname:
        return None
    module = sys.modules.get(fn.__module__)
    path = getattr(module, "__file__", None)
    # The attribute must hold this flow object, not the bare function.
    attribute = _attribute_holding(module, flow)
    if attribute is None:
        return None
    if fn.__module__ == "__main__" or path:
        if path is None:
            return None
        return f"{Path(path).resolve()}:{attribute}"
    return f"{fn.__module__}:{attribute}"


def _attribute_holding(module: Any, flow: Flow[..., Any]) -> str | None:
    if module is None:
        return None
    name = flow.fn.__name__
    if getattr(module, name, None) is flow:
        return name
    for key, value in vars(module).items():
        if value is flow:
            return str(key)
    return None


def run_name(flow: Flow[..., Any], parameters: dict[str, Any]) -> str:
    """The flow run's name from its template (``"{city}-weekly"``, filled with the
    parameters), callable, or a generated one.

    A callable is called with no arguments; called where the run's context is
    set (as :meth:`FlowRunDriver.enter` does), it can read
    ``sluice.runtime.flow_run.parameters``.
    """
    template = flow.options.flow_run_name
    if template is None:
        return generate_run_name()
    if callable(template):
        return str(template())
    try:
        return template.format(**parameters)
    except (KeyError, IndexError, ValueError):
        return template


def persist_parameters(settings: Settings, run_id: str, parameters: dict[str, Any]) -> str | None:
    """Store the exact parameters so a resume calls the flow with the same values.

    None when they cannot be stored (the run still proceeds; a resume then
    uses the JSON summary kept on the run).
    """
    store = result_store_for(settings.home, settings.results.inline_threshold)
    try:
        return store.persist(parameters, parameters_owner(run_id), f"{run_id}/parameters")
    except SerializationError:
        return None


def stored_parameters(record: FlowRunRecord, settings: Settings) -> dict[str, Any]:
    """The exact parameters a run was called with, for a resume: its stored copy, or
    its JSON parameters when it has none, or when the copy is refused (not this
    run's, or stored by an earlier Sluice: nothing is deserialized then, and a
    warning says so)."""
    if not record.parameters_ref:
        return dict(record.parameters)

    store = result_store_for(settings.home, settings.results.inline_threshold)
    try:
        return dict(store.load(record.parameters_ref, parameters_owner(record.id)))
    except (ResultIntegrityError, ResultMissingError) as exc:
        logging.getLogger("sluice.flow_runs").warning(
            "%s; the run's JSON parameters are used instead", exc
        )
        return dict(record.parameters)


def persist_flow_result(
    flow: Flow[..., Any], settings: Settings, run_id: str, value: Any
) -> str | None:
    """Store a flow's return value unless the flow or the settings opt out.

    Raises:
        SerializationError: naming the flow and the value's type.
    """
    persist = flow.options.persist_result
    if persist is None:
        persist = settings.results.persist_by_default
    if not persist:
        return None

    store = result_store_for(settings.home, settings.results.inline_threshold)
    try:
        return store.persist(
            value,
            flow_result_owner(run_id),
            f"{run_id}/flow-result",
            flow.result_serializer,
            flow.options.result_storage or settings.results.storage or None,
        )
    except SerializationError as exc:
        raise SerializationError(
            f"the result of flow {flow.name!r}", exc.value_type, exc.reason
        ) from exc


def record_this_process(record: FlowRunRecord) -> None:
    """Record on ``record`` the process that executes it (for same-host crash detection)."""
    record.hostname = socket.gethostname()
    record.pid = os.getpid()
    identity = this_process()
    record.host_id = identity.host_id if identity else None
    record.pid_started = identity.started if identity else None
