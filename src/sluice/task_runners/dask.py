"""Task runs on a Dask cluster: a temporary ``LocalCluster``, a running
scheduler, or any cluster class (``dask_jobqueue.SLURMCluster`` ...).

Each submitted call becomes one Dask task (see
:mod:`sluice.task_runners.dask_worker`). Futures passed between tasks stay on
the cluster: a downstream Dask task receives its upstream's Dask future, so
data moves worker to worker, never through the flow's process unless the flow
asks for a result. States and logs come back as Dask events and are replayed
into the flow's backend, in their order and with their real timestamps.

Dask is imported only when a runner starts; ``import sluice.task_runners``
does not import it.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from sluice.distribution import install_command
from sluice.errors import ConfigurationError, SluiceError
from sluice.results.owners import owner_of_task_run
from sluice.results.store import load_result
from sluice.states import NOT_LOADED, State, StateType
from sluice.task_runners.base import RunnerCall, TaskRunner

if TYPE_CHECKING:
    from sluice.schemas import TaskRunRecord
    from sluice.task_runners.dask_session import DaskSession


class DaskTaskRunner(TaskRunner):
    """Run submitted tasks on a Dask cluster.

    Without ``address`` each flow run starts a temporary cluster (a
    ``distributed.LocalCluster`` unless ``cluster_class`` says otherwise) and
    closes it when the run ends. With ``address`` it connects to a running
    scheduler and leaves it running.

    A ``LocalCluster`` starts its workers as new Python processes that import
    your script again: guard the flow call with ``if __name__ == "__main__":``.

    Args:
        address: a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
        cluster_class: the cluster to create, as a class or an importable
            ``"module.Class"`` path (``"dask_jobqueue.SLURMCluster"``).
        cluster_kwargs: keyword arguments for the cluster class, e.g.
            ``{"n_workers": 4, "threads_per_worker": 1}``.
        adapt_kwargs: when given, ``cluster.adapt(**adapt_kwargs)`` makes the
            cluster scale itself (e.g. ``{"minimum": 1, "maximum": 10}``).
        client_kwargs: extra keyword arguments for ``distributed.Client``.

    Raises:
        ValueError: ``address`` given together with cluster options, or a
            ``cluster_class`` string that is not a ``"module.Class"`` path.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | type | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if importlib.util.find_spec("distributed") is None:
            raise ImportError(f"DaskTaskRunner needs Dask: {install_command('dask')}")
        if address is not None and (cluster_class or cluster_kwargs or adapt_kwargs):
            raise ValueError(
                "DaskTaskRunner: pass either address= (a running scheduler) or cluster "
                "options (cluster_class=, cluster_kwargs=, adapt_kwargs=), not both"
            )
        if isinstance(cluster_class, str) and "." not in cluster_class.strip("."):
            raise ValueError(
                f"DaskTaskRunner: cluster_class {cluster_class!r} is not a 'module.Class' path"
            )
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = None if adapt_kwargs is None else dict(adapt_kwargs)
        self.client_kwargs = dict(client_kwargs or {})
        self._session: DaskSession | None = None

    def duplicate(self) -> DaskTaskRunner:
        return type(self)(
            self.address,
            self.cluster_class,
            self.cluster_kwargs,
            self.adapt_kwargs,
            self.client_kwargs,
        )

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the started runner (for Dask work of your own)."""
        if self._session is None:
            raise SluiceError("The DaskTaskRunner has not been started")
        return self._session.client

    def start(self) -> None:
        if self._session is None:
            from sluice.task_runners.dask_session import DaskSession

            self._session = DaskSession.open(self)

    def _shutdown_executor(self, cancel_pending: bool) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.close(cancel_pending)

    def _execute(self, call: RunnerCall) -> cf.Future[State]:
        if self._session is None:
            self.start()
        assert self._session is not None
        return self._session.execute(call)

    def __repr__(self) -> str:
        if self.address is not None:
            return f"DaskTaskRunner(address={self.address!r})"
        return (
            f"DaskTaskRunner(cluster_class={self.cluster_class!r}, "
            f"cluster_kwargs={self.cluster_kwargs!r}, adapt_kwargs={self.adapt_kwargs!r})"
        )


def resolve_cluster_class(cluster_class: str | type | None) -> type:
    """The cluster class to create (``distributed.LocalCluster`` by default).

    Raises:
        ConfigurationError: the ``"module.Class"`` path cannot be imported.
    """
    if cluster_class is None:
        from distributed import LocalCluster

        return LocalCluster
    if isinstance(cluster_class, type):
        return cluster_class
    module_name, _, class_name = cluster_class.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"DaskTaskRunner: cannot import {module_name!r} for cluster_class "
            f"{cluster_class!r}: {exc}"
        ) from exc
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ConfigurationError(
            f"DaskTaskRunner: {module_name!r} has no class {class_name!r} (cluster_class)"
        )
    return found


class DaskHeldState(State):
    """A Completed state whose value stays in Dask worker memory until asked for.

    ``data`` fetches the value from the cluster on first use; once the runner
    has closed its client, the persisted result (if any) is loaded instead.
    """

    __slots__ = ("_held",)

    def __init__(self, name: str, message: str | None, record: TaskRunRecord, held: Any) -> None:
        super().__init__(
            StateType.COMPLETED,
            name,
            message,
            NOT_LOADED,
            result_ref=record.result,
            result_owner=owner_of_task_run(record),
        )
        self._held = held

    @property
    def data(self) -> Any:
        if self._data is NOT_LOADED:
            self._data = self._fetch()
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    def _fetch(self) -> Any:
        held = self._held
        if held is not None and held.client.status == "running":
            try:
                return held.result().data
            except Exception:
                # The cluster lost the value and could not compute it again:
                # the stored result is as good.
                if self.result_ref is None:
                    raise
        if self.result_ref is not None:
            return load_result(self.result_ref, self.result_owner or "(unknown record)")
        raise SluiceError(
            "The task's result was held by the Dask cluster, which is closed, and it "
            "was not persisted (persist_result=False)"
        )

    def forget_data(self) -> None:
        self._data = NOT_LOADED
