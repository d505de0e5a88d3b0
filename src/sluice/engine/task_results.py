"""What a task call does with results: persist them, and look up the cache.

Kept apart from the attempt loop so that the rules (persist or not, where,
under which key; cache key and expiry) read in one place.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from sluice.errors import SerializationError
from sluice.results.store import ResultStore, result_store_for

if TYPE_CHECKING:
    from sluice.engine.task_engine import TaskCall
    from sluice.schemas import TaskRunRecord
    from sluice.settings import Settings


def should_persist(call: TaskCall) -> bool:
    """The task's choice, else its flow's, else the setting (on by default)."""
    if call.task.persist_result is not None:
        return call.task.persist_result
    flow_ctx = call.flow_ctx
    if flow_ctx is not None and flow_ctx.flow.persist_result is not None:
        return flow_ctx.flow.persist_result
    return call.settings.results.persist_by_default


def persist_task_result(call: TaskCall, value: Any) -> str:
    """Store a task's return value; its reference.

    Raises:
        SerializationError: naming the task and the value's type.
    """
    settings = call.settings
    task = call.task
    flow = call.flow_ctx.flow if call.flow_ctx is not None else None
    storage = task.result_storage or (flow.result_storage if flow else None)
    serializer = task.result_serializer or (flow.result_serializer if flow else None)
    store = _result_store(settings)
    try:
        return store.persist(
            value,
            _storage_key(call),
            serializer,
            storage or settings.results.storage or None,
        )
    except SerializationError as exc:
        raise SerializationError(
            f"the result of task {task.name!r}", exc.value_type, exc.reason
        ) from exc


#: the result store of the settings object last asked about (one per flow run, mostly)
_last_store: tuple[Settings, ResultStore] | None = None


def _result_store(settings: Settings) -> ResultStore:
    # Looking the store up by its home folder compares paths on every call;
    # a flow's task calls all share one settings object, so remember it.
    global _last_store
    last = _last_store
    if last is not None and last[0] is settings:
        return last[1]
    store = result_store_for(settings.home, settings.results.inline_threshold)
    _last_store = (settings, store)
    return store


def _storage_key(call: TaskCall) -> str:
    record = call.record
    template = call.task.result_storage_key
    if template is None:
        return f"{record.flow_run_id or 'no-flow'}/{record.id}"
    from sluice.engine.parameters import bind_arguments

    parameters = bind_arguments(call.task.fn, call.task.name, call.args, call.kwargs)
    return template.format(
        **parameters, parameters=parameters, task_run=record, flow_run_id=record.flow_run_id
    )


def cache_key_for(call: TaskCall) -> str | None:
    """The cache key of a call whose inputs are resolved (None: not cached).

    Raises:
        SerializationError: an argument cannot be hashed (named in the message).
    """
    policy = call.task.effective_cache_policy
    if policy is None:
        return None
    from sluice.cache_policies import CacheContext
    from sluice.engine.parameters import bind_arguments

    task = call.task
    parameters = bind_arguments(task.fn, task.name, call.args, call.kwargs)
    flow_ctx = call.flow_ctx
    context = CacheContext(
        task.name,
        task.fn,
        call.record.flow_run_id,
        flow_ctx.parameters if flow_ctx is not None else {},
        task,
        call.record,
    )
    return policy.compute_key(context, parameters)


def cache_expiration(call: TaskCall, now: _dt.datetime) -> _dt.datetime | None:
    expiration = call.task.cache_expiration
    return now + expiration if expiration is not None else None


def find_cached(call: TaskCall, key: str, now: _dt.datetime) -> TaskRunRecord | None:
    """A valid earlier run with ``key``, from any flow or process."""
    return call.reader().find_cached_task_run(key, now)


def settings_for_standalone() -> Settings:
    from sluice.settings import load_settings

    return load_settings()
