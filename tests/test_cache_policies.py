"""Cache keys: pure, stable, composable."""

from __future__ import annotations

import threading

import pytest

from sluice.cache_policies import (
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheContext,
    resolve_policy,
    task_input_hash,
)
from sluice.errors import SerializationError


def fetch(source: str, verbose: bool = False) -> str:
    return source


def other(source: str, verbose: bool = False) -> str:
    return source.upper()


def ctx(fn=fetch, run: str = "run-1", params: dict | None = None) -> CacheContext:  # type: ignore[no-untyped-def]
    return CacheContext(fn.__name__, fn, run, params or {})


def test_inputs_key_is_stable_and_order_independent() -> None:
    a = INPUTS.compute_key(ctx(), {"source": "ena", "verbose": False})
    b = INPUTS.compute_key(ctx(), {"verbose": False, "source": "ena"})
    assert a == b and a is not None and a.startswith("fetch:")
    assert INPUTS.compute_key(ctx(), {"source": "mgnify", "verbose": False}) != a


def test_minus_ignores_an_argument() -> None:
    policy = INPUTS - "verbose"
    assert policy.compute_key(ctx(), {"source": "x", "verbose": True}) == policy.compute_key(
        ctx(), {"source": "x", "verbose": False}
    )
    combined = (INPUTS + TASK_SOURCE) - "verbose"
    assert combined.compute_key(ctx(), {"source": "x", "verbose": True}) == combined.compute_key(
        ctx(), {"source": "x", "verbose": False}
    )


def test_task_source_separates_functions_and_run_id_separates_runs() -> None:
    assert TASK_SOURCE.compute_key(ctx(fetch), {}) != TASK_SOURCE.compute_key(
        CacheContext("fetch", other, None), {}
    )
    assert RUN_ID.compute_key(ctx(run="a"), {}) != RUN_ID.compute_key(ctx(run="b"), {})
    assert FLOW_PARAMETERS.compute_key(ctx(params={"d": 1}), {}) != FLOW_PARAMETERS.compute_key(
        ctx(params={"d": 2}), {}
    )


def test_none_means_no_caching_even_when_combined() -> None:
    assert NO_CACHE is NONE
    assert NONE.compute_key(ctx(), {"source": "x"}) is None
    assert (INPUTS + NONE).compute_key(ctx(), {"source": "x"}) is None
    assert resolve_policy(None, None) is None
    assert resolve_policy(NONE, None) is None


def test_unhashable_input_names_the_argument() -> None:
    with pytest.raises(SerializationError, match="argument 'handle' of task 'fetch'"):
        INPUTS.compute_key(ctx(), {"handle": threading.Lock()})


def test_task_input_hash_and_key_functions() -> None:
    h1 = task_input_hash(ctx(), {"source": "a"})
    assert h1 == task_input_hash(ctx(), {"source": "a"})
    assert h1 != task_input_hash(ctx(), {"source": "b"})
    policy = resolve_policy(INPUTS, lambda c, p: f"custom-{p['source']}")
    assert policy is not None
    assert policy.compute_key(ctx(), {"source": "z"}) == policy.compute_key(
        ctx(run="other"), {"source": "z", "verbose": True}
    )
    skip = resolve_policy(None, lambda c, p: None)
    assert skip is not None and skip.compute_key(ctx(), {"source": "z"}) is None
