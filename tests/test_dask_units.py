"""The Dask runner's pure parts, without a cluster."""

from __future__ import annotations

from collections import namedtuple

import pytest

pytest.importorskip("distributed")

from sluice.errors import ConfigurationError
from sluice.task_runners.dask import DaskTaskRunner, resolve_cluster_class
from sluice.task_runners.dask_worker import (
    TaskValue,
    UpstreamSlot,
    _is_small,
    fill_slots,
    pack_event,
    unpack_event,
)

Pair = namedtuple("Pair", "left right")


def test_slots_are_filled_in_nested_arguments() -> None:
    upstream = [TaskValue("a", None), TaskValue(["b"], None)]
    value = {
        "x": [UpstreamSlot(0), (UpstreamSlot(1), 3)],
        "pair": Pair(UpstreamSlot(0), 1),
        "set": frozenset({UpstreamSlot(0)}),
    }
    assert fill_slots(value, upstream, 0) == {
        "x": ["a", (["b"], 3)],
        "pair": Pair("a", 1),
        "set": frozenset({"a"}),
    }
    deep = [[[[[UpstreamSlot(0)]]]]]
    assert fill_slots(deep, upstream, 0) == [[[[[UpstreamSlot(0)]]]]]  # past the depth limit


def test_small_values_ride_with_the_records_and_large_ones_stay() -> None:
    assert _is_small(3, '{"s":"json","h":"' + "0" * 32 + '","v":3}')
    assert _is_small(b"x", '{"s": "pickle", "b64": "..."}')
    assert not _is_small(b"x", '{"s": "pickle", "path": "/storage/run/task"}')
    assert _is_small(None, None) and _is_small("short", None)
    assert not _is_small("x" * 100_000, None)
    assert not _is_small([1, 2], None)


def test_record_events_round_trip_even_for_main_module_values() -> None:
    class Local(Exception):
        pass

    items = [("run-1", [("logs", ["line"], None)], None, False)]
    assert unpack_event(pack_event(items)) == items
    odd = [("run-2", [], Local("defined in a function"), False)]
    assert str(unpack_event(pack_event(odd))[0][2]) == "defined in a function"


def test_cluster_class_resolution() -> None:
    import distributed

    assert resolve_cluster_class(None) is distributed.LocalCluster
    assert resolve_cluster_class("distributed.LocalCluster") is distributed.LocalCluster
    assert resolve_cluster_class(distributed.SpecCluster) is distributed.SpecCluster
    with pytest.raises(ConfigurationError, match="no class 'NoSuchCluster'"):
        resolve_cluster_class("distributed.NoSuchCluster")
    with pytest.raises(ConfigurationError, match="cannot import 'no_such_pkg_xyz'"):
        resolve_cluster_class("no_such_pkg_xyz.Cluster")


def test_runner_configuration_is_copied_per_flow_run() -> None:
    runner = DaskTaskRunner(
        cluster_kwargs={"n_workers": 2}, adapt_kwargs={"maximum": 3}, client_kwargs={"timeout": 5}
    )
    copy = runner.duplicate()
    assert copy is not runner
    assert (copy.cluster_kwargs, copy.adapt_kwargs, copy.client_kwargs) == (
        {"n_workers": 2},
        {"maximum": 3},
        {"timeout": 5},
    )
    assert "n_workers" in repr(runner)
    assert repr(DaskTaskRunner(address="tcp://h:8786")) == "DaskTaskRunner(address='tcp://h:8786')"
