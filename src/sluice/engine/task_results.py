"""What a task call does with results: persist them, and look up the cache.

Kept apart from the attempt loop so that the rules (persist or not, where,
under which key; cache key and expiry) read in one place.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from sluice.cache_policies import CacheContext
from sluice.errors import ResultIntegrityError, ResultMissingError, SerializationError
from sluice.results.owners import owner_of_task_run
from sluice.results.store import ResultStore, result_store_for
from sluice.settings import load_settings

if TYPE_CHECKING:
    from sluice.engine.task_call import TaskCall
    from sluice.flows import Flow
    from sluice.schemas import TaskRunRecord
    from sluice.settings import Settings
    from sluice.tasks import Task


def should_persist(call: TaskCall) -> bool:
    """The task's choice, else its flow's, else the setting (on by default)."""
    if call.task.options.persist_result is not None:
        return call.task.options.persist_result
    flow_ctx = call.flow_ctx
    if flow_ctx is not None and flow_ctx.flow.options.persist_result is not None:
        return flow_ctx.flow.options.persist_result
    return call.settings.results.persist_by_default


def with_flow_result_options(
    task: Task[..., Any], flow: Flow[..., Any], call: TaskCall
) -> Task[..., Any]:
    """``task`` with its flow's result choices made its own: a call run in another
    process has no flow run there to inherit them from."""
    return task.with_options(
        persist_result=should_persist(call),
        result_storage=task.options.result_storage or flow.options.result_storage,
        result_serializer=task.result_serializer or flow.result_serializer,
    )


def persist_task_result(call: TaskCall, value: Any, owner: str) -> str:
    """Store a task's return value for ``owner`` (its record, see
    :mod:`sluice.results.owners`); its reference.

    Raises:
        SerializationError: naming the task and the value's type.
    """
    settings = call.settings
    task = call.task
    flow = call.flow_ctx.flow if call.flow_ctx is not None else None
    storage = task.options.result_storage or (flow.options.result_storage if flow else None)
    serializer = task.result_serializer or (flow.result_serializer if flow else None)
    store = _result_store(settings)
    try:
        return store.persist(
            value,
            owner,
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
    template = call.task.options.result_storage_key
    if template is None:
        return f"{record.flow_run_id or 'no-flow'}/{record.id}"
    parameters = call.parameters()
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
    task = call.task
    parameters = call.parameters()
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
    expiration = call.task.options.cache_expiration
    return now + expiration if expiration is not None else None


def find_cached(call: TaskCall, key: str, now: _dt.datetime) -> TaskRunRecord | None:
    """A valid earlier run with ``key``, from any flow or process."""
    return call.reader().find_cached_task_run(key, now)


def adopt_cached_result(call: TaskCall, hit: TaskRunRecord) -> str | None:
    """``hit``'s result signed for this call's record (None when there is none).

    Raises:
        ResultIntegrityError: the cached result is not ``hit``'s (nothing is loaded).
        ResultMissingError: its reference is malformed.
    """
    if hit.result is None:
        return None
    store = _result_store(call.settings)
    return store.rebind(hit.result, owner_of_task_run(hit), owner_of_task_run(call.record))


def replay_refusal(settings: Settings, entry: TaskRunRecord) -> str | None:
    """Why ``entry``'s stored result cannot be replayed (None: it can): its signatures
    are checked (a file's too), nothing is deserialized."""
    if entry.result is None:
        return None
    try:
        _result_store(settings).verify(entry.result, owner_of_task_run(entry))
    except (ResultIntegrityError, ResultMissingError) as exc:
        return str(exc)
    return None


def settings_for_standalone() -> Settings:
    return load_settings()
