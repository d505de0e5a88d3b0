"""Cache policies: which calls of a task count as "the same call".

A policy turns a call into a cache key (or ``None``: do not cache). Policies
compose: ``INPUTS + TASK_SOURCE`` keys on both, ``INPUTS - "verbose"`` ignores
one argument. Computing a key is pure: the same call gives the same key in any
process, which is what lets a cache hit cross processes and flows.

Sluice caches nothing unless a task asks for it (``cache_policy=`` or
``cache_key_fn=``): a task with side effects called twice runs twice. Prefect's
default, :data:`DEFAULT` (``INPUTS + TASK_SOURCE + RUN_ID``: a repeated
identical call inside one flow run is answered from the first), is one
``cache_policy=DEFAULT`` away.
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sluice.errors import SerializationError
from sluice.results.serializers import is_plain_json


@dataclass(frozen=True)
class CacheContext:
    """What a policy (or a ``cache_key_fn``) may look at besides the call's arguments.

    ``task`` and ``task_run`` are the :class:`~sluice.tasks.Task` and the task
    run record (``context.task_run.flow_run_id``, as in Prefect's docs), when
    the key is computed for a real call.
    """

    task_name: str
    fn: Callable[..., Any]
    flow_run_id: str | None
    flow_parameters: dict[str, Any] = field(default_factory=dict)
    task: Any = None
    task_run: Any = None


def hash_value(value: Any, what: str) -> str:
    """A stable hex digest of ``value``.

    Raises:
        SerializationError: naming ``what`` when the value cannot be hashed.
    """
    if is_plain_json(value):
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    else:
        import cloudpickle

        try:
            data = cloudpickle.dumps(value)
        except Exception as exc:
            raise SerializationError(
                what, type(value).__name__, f"cannot be hashed for caching: {exc}"
            ) from exc
    return hashlib.sha256(data).hexdigest()


class CachePolicy(abc.ABC):
    """Base class: a rule that derives a cache key from a call."""

    @abc.abstractmethod
    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str] | None:
        """Strings that identify the call, or None when this policy says "don't cache"."""

    def compute_key(self, ctx: CacheContext, inputs: dict[str, Any]) -> str | None:
        """The cache key of a call, namespaced by task name; None means no caching."""
        parts = self.key_parts(ctx, inputs)
        if parts is None:
            return None
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
        return f"{ctx.task_name}:{digest}"

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return CompoundPolicy((*_policies(self), *_policies(other)))

    @classmethod
    def from_cache_key_fn(
        cls, cache_key_fn: Callable[[CacheContext, dict[str, Any]], str | None]
    ) -> CacheKeyFnPolicy:
        """The policy of a ``cache_key_fn(context, parameters)``."""
        return CacheKeyFnPolicy(cache_key_fn)


def _policies(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundPolicy) else (policy,)


@dataclass(frozen=True)
class CompoundPolicy(CachePolicy):
    """Several policies at once; any one saying "don't cache" wins."""

    policies: tuple[CachePolicy, ...]

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str] | None:
        parts: list[str] = []
        for policy in self.policies:
            more = policy.key_parts(ctx, inputs)
            if more is None:
                return None
            parts.extend(more)
        return parts

    def __sub__(self, name: str) -> CachePolicy:
        return CompoundPolicy(
            tuple(p - name if isinstance(p, Inputs) else p for p in self.policies)
        )


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """Key on the call's arguments (all but ``exclude``)."""

    exclude: frozenset[str] = frozenset()

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str]:
        return [
            f"{name}={hash_value(value, f'argument {name!r} of task {ctx.task_name!r}')}"
            for name, value in sorted(inputs.items())
            if name not in self.exclude
        ]

    def __sub__(self, name: str) -> Inputs:
        return Inputs(self.exclude | {name})


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """Key on the task function's source code: editing the task invalidates its cache."""

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str]:
        try:
            source = inspect.getsource(ctx.fn)
        except (OSError, TypeError):
            source = ctx.fn.__code__.co_code.hex() if hasattr(ctx.fn, "__code__") else repr(ctx.fn)
        return ["source=" + hashlib.sha256(source.encode()).hexdigest()]


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """Key on the parameters of the flow run the call belongs to."""

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str]:
        return ["flow-params=" + hash_value(ctx.flow_parameters, "the flow's parameters")]


@dataclass(frozen=True)
class RunId(CachePolicy):
    """Key on the flow run: calls share results only within one flow run. A call
    outside any flow shares with nothing (Prefect keys it on its own task run),
    so it is not cached."""

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str] | None:
        return None if ctx.flow_run_id is None else [f"run={ctx.flow_run_id}"]


@dataclass(frozen=True)
class NoCache(CachePolicy):
    """Never cache."""

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """A user's ``cache_key_fn(context, parameters) -> str | None`` as a policy
    (what ``cache_key_fn=`` on a task makes); combine it with others by ``+``."""

    cache_key_fn: Callable[[CacheContext, dict[str, Any]], str | None]

    def key_parts(self, ctx: CacheContext, inputs: dict[str, Any]) -> list[str] | None:
        key = self.cache_key_fn(ctx, inputs)
        return None if key is None else [f"fn={key}"]


#: the earlier name of :class:`CacheKeyFnPolicy`
KeyFunction = CacheKeyFnPolicy
#: Prefect's name for a sum of policies
CompoundCachePolicy = CompoundPolicy


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NONE = NoCache()
NO_CACHE = NONE
#: Prefect's default policy: the same inputs to the same code within one flow run
#: (outside a flow: within one task run, i.e. never shared). Sluice's tasks do not
#: use it unless asked: ``@task(cache_policy=DEFAULT)``.
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID


__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheContext",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "CompoundPolicy",
    "FlowParameters",
    "Inputs",
    "NoCache",
    "RunId",
    "TaskSource",
    "excluded",
    "resolve_policy",
    "task_input_hash",
]


def task_input_hash(context: CacheContext, arguments: dict[str, Any]) -> str:
    """A ``cache_key_fn`` keyed on the task's code and its arguments."""
    parts = (INPUTS + TASK_SOURCE).key_parts(context, arguments) or []
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def resolve_policy(
    policy: CachePolicy | None, key_fn: Callable[..., str | None] | None
) -> CachePolicy | None:
    """The policy a task uses: ``cache_key_fn`` wins; None means no caching."""
    if key_fn is not None:
        return CacheKeyFnPolicy(key_fn)
    if policy is None or isinstance(policy, NoCache):
        return None
    return policy


def excluded(names: Iterable[str]) -> Inputs:
    """``INPUTS`` minus several arguments."""
    return Inputs(frozenset(names))
