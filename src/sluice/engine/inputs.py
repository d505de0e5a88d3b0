"""Finding futures among a call's arguments, and replacing them by their results.

An upstream (a future or a state passed as an argument or in ``wait_for``)
that did not complete leaves the call ``NotReady``: a Pending state, and the
function is not called. Wrapping the upstream in ``allow_failure`` lets a
Failed one through (its exception is passed as the value).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sluice.futures import SluiceFuture, resolved_future
from sluice.states import Pending, State
from sluice.utilities.annotations import BaseAnnotation, allow_failure, opaque, quote

#: How deep into nested lists/dicts futures are looked for; deeper ones pass as-is.
_MAX_DEPTH = 4


def collect_upstream(
    args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: list[Any]
) -> list[SluiceFuture[Any]]:
    """Every future the call depends on: in its arguments and in ``wait_for``."""
    found: list[SluiceFuture[Any]] = []
    for value in args:
        _collect(value, found, 0)
    for value in kwargs.values():
        _collect(value, found, 0)
    for value in wait_for:
        _collect(value, found, 0)
    if len(found) > 1:
        unique = {id(f): f for f in found}
        found = list(unique.values())
    return found


def _collect(value: Any, found: list[SluiceFuture[Any]], depth: int) -> None:
    if isinstance(value, SluiceFuture):
        found.append(value)
    elif isinstance(value, State):
        # A state passed on (``t(return_state=True)``) is an upstream that is done.
        found.append(resolved_future(value.run_id or "", "", value))
    elif isinstance(value, allow_failure):
        _collect(value.value, found, depth)
    elif isinstance(value, opaque):
        # The wrapped future counts, nothing inside the value does.
        _collect(value.value, found, _MAX_DEPTH)
    elif isinstance(value, BaseAnnotation) and not isinstance(value, quote):
        _collect(value.value, found, depth)  # unmapped() given to a plain call
    elif depth < _MAX_DEPTH and isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _collect(item, found, depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, dict):
        for item in value.values():
            _collect(item, found, depth + 1)


class _NotReady(Exception):
    def __init__(self, state: State) -> None:
        self.state = state


def resolve_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], State | None]:
    """Replace futures and states by their results, waiting for the futures.

    Returns:
        The new arguments, and the state of the first upstream that did not
        complete (a Failed one wrapped in ``allow_failure`` counts as done),
        or ``None``.
    """
    try:
        new_args = tuple(_resolve(v, 0, False) for v in args)
        new_kwargs = {k: _resolve(v, 0, False) for k, v in kwargs.items()}
    except _NotReady as unready:
        return args, kwargs, unready.state
    return new_args, new_kwargs, None


def unready_wait_for(wait_for: list[Any]) -> State | None:
    """The state of the first ``wait_for`` upstream that did not complete, or None."""
    try:
        for value in wait_for:
            _resolve(value, 0, False)
    except _NotReady as unready:
        return unready.state
    return None


def not_ready(upstream: State) -> State:
    """The state of a call whose ``upstream`` did not complete: it never runs."""
    who = f"Upstream task run {upstream.run_id}" if upstream.run_id else "An upstream state"
    return Pending(
        name="NotReady", message=f"{who} did not complete (it is {upstream.name}): not run"
    )


def upstream_value(state: State, tolerate: bool) -> Any:
    """The value a done upstream passes on.

    Raises:
        _NotReady: it did not complete (a Failed one is let through if ``tolerate``).
    """
    if state.is_completed():
        return state.result()
    if tolerate and state.is_failed():
        return state.result(raise_on_failure=False)
    raise _NotReady(state)


def _resolve(value: Any, depth: int, tolerate: bool) -> Any:
    if isinstance(value, SluiceFuture):
        value.wait()
        return upstream_value(value.state, tolerate)
    if isinstance(value, State):
        return upstream_value(value, tolerate)
    if isinstance(value, allow_failure):
        return _resolve(value.value, depth, True)
    if isinstance(value, quote):
        return value.value
    if isinstance(value, opaque):
        return _resolve(value.value, _MAX_DEPTH, tolerate)
    if isinstance(value, BaseAnnotation):
        return _resolve(value.value, depth, tolerate)  # unmapped() given to a plain call
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, list):
        return [_resolve(v, depth + 1, tolerate) for v in value]
    if isinstance(value, tuple):
        items = [_resolve(v, depth + 1, tolerate) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, (set, frozenset)):
        return type(value)(_resolve(v, depth + 1, tolerate) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, depth + 1, tolerate) for k, v in value.items()}
    return value


def futures_to_states(value: Any, depth: int = 0) -> Any:
    """``value`` with every future in it (in lists, tuples, sets, dicts) replaced by
    its final state, waiting for each: what a flow's return value is judged on."""
    if isinstance(value, SluiceFuture):
        value.wait()
        return value.state
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, list):
        return [futures_to_states(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        items = [futures_to_states(v, depth + 1) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, (set, frozenset)):
        return type(value)(futures_to_states(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {k: futures_to_states(v, depth + 1) for k, v in value.items()}
    return value


def input_fingerprint(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """A digest of a call's inputs, or None when they cannot be fingerprinted.

    A future stands for its task's journal position rather than its value: the
    fingerprint is computed before upstream results exist, and a replayed
    upstream yields the same value anyway (a diverged one stops replay first).
    """
    if _all_scalars(args) and (not kwargs or _all_scalars(kwargs.values())):
        # The common case (a few numbers or strings): repr is exact and far
        # cheaper than JSON; the "r" prefix keeps it apart from the JSON form.
        text = "r" + repr(args) + (repr(sorted(kwargs.items())) if kwargs else "[]")
    else:
        try:
            text = json.dumps([args, kwargs], sort_keys=True, default=_fingerprint_default)
        except (TypeError, ValueError, _Unfingerprintable):
            return None
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_SCALARS = frozenset({int, str, float, bool, type(None)})


def _all_scalars(values: Any) -> bool:
    # A plain loop: a generator in all() costs more than the check for a few values.
    for value in values:  # noqa: SIM110 (see above)
        if type(value) not in _SCALARS:
            return False
    return True


class _Unfingerprintable(Exception):
    pass


def _fingerprint_default(value: Any) -> Any:
    if isinstance(value, SluiceFuture):
        return f"<future {value.task_key}>"
    if isinstance(value, State):
        if value.run_id:
            return f"<state {value.run_id}>"
        return {"state": [value.type.value, value.name, value.message], "data": value.data}
    if isinstance(value, BaseAnnotation):
        return {type(value).__name__: value.value}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    import cloudpickle

    try:
        return hashlib.blake2b(cloudpickle.dumps(value), digest_size=16).hexdigest()
    except Exception as exc:
        raise _Unfingerprintable(str(exc)) from exc
