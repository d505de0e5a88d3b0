"""The task runs of one flow run as a graph for the UI, aggregated in the database.

A flow run may hold 10,000 task runs; sending each to the browser (or even
through Python) makes the page slow, so nodes and edges are computed by SQL:
every task run gets a *node key* (an SQL expression), rows are grouped by
key, and edges are the distinct key pairs joined through ``upstream_ids``
(a JSON list, expanded by ``json_each`` on SQLite and
``jsonb_array_elements_text`` on PostgreSQL).

Node keys:

* ``t:<id>``: one unmapped task run;
* ``m:<call_index>:<task_name>``: the task runs of one ``.map`` call (a
  group named in ``expand`` with at most :data:`MAX_EXPAND` members gets one
  node per task run instead);
* ``n:<task_name>``: when the unmapped calls alone would make more than
  :data:`MAX_NODES` nodes (a loop of ``t(i)``), all of a task's unmapped calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from sluice.store.schema import task_run
from sluice.store.ui_queries import View, parse_group

#: most nodes a graph (and bars a timeline) may hold before unmapped calls are folded by name
MAX_NODES = 300
#: largest ``.map`` group that can be expanded into one node per task run
MAX_EXPAND = 200


def _group_sizes(conn: Connection, flow_run_id: str) -> tuple[int, dict[tuple[str, int], int]]:
    """(how many unmapped task runs, size of each mapped group)."""
    is_mapped = task_run.c.map_index >= 0
    stmt = (
        select(task_run.c.task_name, task_run.c.call_index, is_mapped.label("mapped"), func.count())
        .where(task_run.c.flow_run_id == flow_run_id)
        .group_by(task_run.c.task_name, task_run.c.call_index, is_mapped)
    )
    singles, groups = 0, {}
    for name, call, mapped, n in conn.execute(stmt):
        if mapped:
            groups[(name, int(call))] = int(n)
        else:
            singles += int(n)
    return singles, groups


def _node_key(
    table: Table | Any, expanded: list[tuple[str, int]], folded: bool
) -> ColumnElement[str]:
    c = table.c
    call_text = cast(c.call_index, String)
    in_expanded = or_(
        false(), *(and_(c.task_name == name, c.call_index == call) for name, call in expanded)
    )
    single = literal("n:") + c.task_name if folded else literal("t:") + c.id
    return case(
        (and_(c.map_index >= 0, ~in_expanded), literal("m:") + call_text + ":" + c.task_name),
        (c.map_index >= 0, literal("t:") + c.id),
        else_=single,
    )


def _nodes(conn: Connection, flow_run_id: str, key: ColumnElement[str]) -> list[View]:
    c = task_run.c
    unfinished = func.sum(case((c.end_time.is_(None), 1), else_=0))
    stmt = (
        select(
            key.label("key"),
            c.state_type,
            func.count(),
            func.min(c.start_time),
            func.max(c.end_time),
            unfinished,
            func.sum(c.run_count),
            func.min(c.created),
            func.min(c.task_name),
            func.min(c.call_index),
            func.min(c.id),
            func.min(c.name),
            func.min(c.state_name),
        )
        .where(c.flow_run_id == flow_run_id)
        .group_by(key, c.state_type)
    )
    nodes: dict[str, dict[str, Any]] = {}
    for row in conn.execute(stmt):
        k, state, n, start, end, open_, attempts, created, name, call, tid, label, sname = row
        node = nodes.get(k)
        if node is None:
            kind = {"t": "task", "m": "map", "n": "name"}[k[0]]
            if kind == "map":
                label = f"{name} [{call}]"
            elif kind == "name":
                label = name
            node = nodes[k] = {
                "key": k,
                "label": label,
                "task_name": name,
                "call_index": None if kind == "name" else int(call),
                "kind": kind,
                "count": 0,
                "states": {},
                "start": None,
                "end": None,
                "unfinished": 0,
                "attempts": 0,
                "task_run_id": tid if kind == "task" else None,
                "state_name": sname if kind == "task" else None,
                "created": created,
            }
        node["count"] += int(n)
        node["states"][state] = node["states"].get(state, 0) + int(n)
        if start is not None and (node["start"] is None or start < node["start"]):
            node["start"] = start
        if end is not None and (node["end"] is None or end > node["end"]):
            node["end"] = end
        node["unfinished"] += int(open_ or 0)
        node["attempts"] += int(attempts or 0)
        node["created"] = min(node["created"], created)
    ordered = sorted(nodes.values(), key=lambda v: (v["created"], v["key"]))
    for node in ordered:
        if node.pop("unfinished"):
            node["end"] = None  # still running: the group has not ended
        del node["created"]
    return ordered


def _edges(
    conn: Connection,
    flow_run_id: str,
    expanded: list[tuple[str, int]],
    folded: bool,
    nodes: set[str],
) -> list[tuple[str, str]]:
    """Distinct (upstream key, downstream key) pairs between ``nodes`` of this flow run."""
    downstream = task_run.alias("downstream")
    upstream = task_run.alias("upstream")
    # The members of a .map call mostly share one upstream list: each distinct
    # (node, list) pair is expanded once, not once per task run.
    lists = (
        select(
            _node_key(downstream, expanded, folded).label("to_key"),
            downstream.c.upstream_ids.label("ids"),
        )
        .distinct()
        .where(downstream.c.flow_run_id == flow_run_id, downstream.c.upstream_ids != "[]")
        .subquery("lists")
    )
    if conn.dialect.name == "postgresql":
        ids = func.jsonb_array_elements_text(cast(lists.c.ids, JSONB))
    else:
        ids = func.json_each(lists.c.ids)
    element = ids.table_valued("value").alias("element")
    stmt = (
        select(_node_key(upstream, expanded, folded), lists.c.to_key)
        .distinct()
        .select_from(lists)
        .join(element, literal(True))
        # By primary key alone (an upstream outside this flow run is dropped
        # below): a condition on its flow run would make SQLite scan them.
        .join(upstream, upstream.c.id == element.c.value)
    )
    return sorted((a, b) for a, b in conn.execute(stmt) if a != b and a in nodes)


class EdgeCache:
    """The edges of recently drawn graphs, reused while no task run is added.

    A task run's ``upstream_ids`` are fixed when it is created, so a graph's
    edges change only when task runs are added: while a run of 10,000 task
    runs moves through its states, polling recomputes the nodes alone.
    Thread-safe; keeps the ``size`` most recent graphs.
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, list[tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> list[tuple[str, str]] | None:
        with self._lock:
            edges = self._entries.get(key)
            if edges is not None:
                self._entries.move_to_end(key)
            return edges

    def put(self, key: Hashable, edges: list[tuple[str, str]]) -> None:
        with self._lock:
            self._entries[key] = edges
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def task_graph(
    conn: Connection,
    flow_run_id: str,
    expand: Iterable[str] = (),
    edge_cache: EdgeCache | None = None,
) -> View:
    """The flow run's task runs as graph nodes (see the module docstring) and edges.

    Each node has its task run count per state, earliest start and latest
    end (``None`` while any member runs): the timeline draws from the same data.
    """
    singles, groups = _group_sizes(conn, flow_run_id)
    expanded = []
    for key in sorted(set(expand)):
        group = parse_group(key)
        if group is not None and groups.get(group, MAX_EXPAND + 1) <= MAX_EXPAND:
            expanded.append(group)
    members = sum(groups[g] for g in expanded)
    folded = singles + len(groups) - len(expanded) + members > MAX_NODES
    nodes = _nodes(conn, flow_run_id, _node_key(task_run, expanded, folded))
    total = singles + sum(groups.values())
    cache_key = (conn.engine.url, flow_run_id, total, tuple(expanded), folded)
    edges = edge_cache.get(cache_key) if edge_cache is not None else None
    if edges is None:
        edges = _edges(conn, flow_run_id, expanded, folded, {node["key"] for node in nodes})
        if edge_cache is not None:
            edge_cache.put(cache_key, edges)
    return {"task_run_count": total, "nodes": nodes, "edges": edges, "folded": folded}


__all__ = ["MAX_EXPAND", "MAX_NODES", "EdgeCache", "task_graph"]
