"""``sluice work-pool create|ls|inspect|pause|resume|delete``, ``work-queue create|ls|inspect``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import cli_backend
from sluice.cli.errors import CliError
from sluice.cli.render import (
    OutputFormat,
    OutputOption,
    fmt_time,
    make_console,
    new_table,
    print_json,
    print_kv,
    to_jsonable,
)
from sluice.schemas import WorkPoolRecord, WorkQueueRecord

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import WorkPoolRecord, WorkQueueRecord

pools_app = typer.Typer(help="Create and manage work pools.", no_args_is_help=True)
queues_app = typer.Typer(help="Create and inspect the queues of work pools.", no_args_is_help=True)

#: the pool types a worker knows how to run
POOL_TYPES = ("process",)

PoolName = Annotated[str, typer.Argument(help="The work pool's name.")]


def _backend() -> Any:
    return cli_backend()


def _limit_text(limit: int | None) -> str:
    return "-" if limit is None else str(limit)


@pools_app.command("create")
def create_pool(
    name: PoolName,
    type_: Annotated[
        str, typer.Option("--type", "-t", help="How runs execute: process (a subprocess each).")
    ] = "process",
    concurrency_limit: Annotated[
        int | None,
        typer.Option("--concurrency-limit", min=0, help="Runs of the pool at once, at most."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a work pool (with its ``default`` queue)."""
    if type_ not in POOL_TYPES:
        raise CliError(f"unknown work pool type {type_!r}; known: {', '.join(POOL_TYPES)}")
    pool = _backend().create_work_pool(
        WorkPoolRecord(
            name=name,
            type=type_,
            description=description,
            concurrency_limit=concurrency_limit,
            paused=paused,
        )
    )
    make_console().print(f"Created work pool {pool.name!r} (type {pool.type}).")


@pools_app.command("ls")
def list_pools(output: OutputOption = OutputFormat.table) -> None:
    """List work pools with their limits and online workers."""
    backend = _backend()
    pools = backend.list_work_pools()
    rows = [(p, _online_workers(backend, p.name)) for p in pools]
    if output is OutputFormat.json:
        print_json([{**to_jsonable(p), "online_workers": n} for p, n in rows])
        return
    console = make_console()
    if not pools:
        console.print("No work pools. Create one with: sluice work-pool create NAME")
        return
    table = new_table("name", "type", "concurrency limit", "paused", "online workers")
    for pool, online in rows:
        table.add_row(
            pool.name, pool.type, _limit_text(pool.concurrency_limit),
            "yes" if pool.paused else "no", str(online),
        )  # fmt: skip
    console.print(table)


def _online_workers(backend: Backend, pool: str) -> int:
    return sum(1 for w in backend.list_workers(pool) if w.is_online())


@pools_app.command("inspect")
def inspect_pool(name: PoolName, output: OutputOption = OutputFormat.table) -> None:
    """Show a work pool, its queues and its workers."""
    backend = _backend()
    pool: WorkPoolRecord = backend.read_work_pool(name)
    queues = backend.list_work_queues(name)
    workers = backend.list_workers(name)
    if output is OutputFormat.json:
        print_json({"work_pool": pool, "queues": queues, "workers": workers})
        return
    console = make_console()
    print_kv(
        console,
        [
            ("name", pool.name),
            ("type", pool.type),
            ("description", pool.description or "-"),
            ("concurrency limit", _limit_text(pool.concurrency_limit)),
            ("paused", "yes" if pool.paused else "no"),
            ("created", fmt_time(pool.created)),
        ],
    )
    _print_queues(queues)
    table = new_table("worker", "status", "last heartbeat (UTC)", "host", "pid", title="Workers")
    for w in workers:
        table.add_row(w.name, w.status, fmt_time(w.last_heartbeat), w.hostname or "-", str(w.pid))
    console.print(table)


def _set_pool(name: str, changes: dict[str, Any], verb: str) -> None:
    pool = _backend().update_work_pool(name, changes)
    make_console().print(f"Work pool {pool.name!r} {verb}.")


@pools_app.command("pause")
def pause_pool(name: PoolName) -> None:
    """Pause a work pool: workers claim none of its runs."""
    _set_pool(name, {"paused": True}, "paused")


@pools_app.command("resume")
def resume_pool(name: PoolName) -> None:
    """Resume a paused work pool."""
    _set_pool(name, {"paused": False}, "resumed")


@pools_app.command("set-concurrency-limit")
def set_pool_limit(
    name: PoolName, limit: Annotated[int, typer.Argument(min=0, help="Runs at once, at most.")]
) -> None:
    """Set a work pool's concurrency limit."""
    _set_pool(name, {"concurrency_limit": limit}, f"limited to {limit} runs at once")


@pools_app.command("delete")
def delete_pool(name: PoolName) -> None:
    """Delete a work pool (refused while deployments use it)."""
    _backend().delete_work_pool(name)
    make_console().print(f"Deleted work pool {name!r}.")


# -- queues -------------------------------------------------------------------------------
PoolOption = Annotated[str, typer.Option("--pool", "-p", help="The work pool.")]


@queues_app.command("create")
def create_queue(
    name: Annotated[str, typer.Argument(help="The queue's name.")],
    pool: PoolOption,
    priority: Annotated[
        int, typer.Option("--priority", min=1, help="Lower numbers are served first.")
    ] = 1,
    concurrency_limit: Annotated[
        int | None, typer.Option("--concurrency-limit", min=0, help="Runs at once, at most.")
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
) -> None:
    """Create a queue in a work pool."""
    queue = _backend().create_work_queue(
        WorkQueueRecord(
            pool_name=pool,
            name=name,
            priority=priority,
            concurrency_limit=concurrency_limit,
            description=description,
        )
    )
    make_console().print(
        f"Created work queue {queue.name!r} in pool {pool!r} (priority {queue.priority})."
    )


@queues_app.command("ls")
def list_queues(
    pool: Annotated[
        str | None, typer.Option("--pool", "-p", help="Only this pool's queues.")
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List work queues (of one pool, or of every pool)."""
    backend = _backend()
    pools = [pool] if pool else [p.name for p in backend.list_work_pools()]
    queues: list[WorkQueueRecord] = [q for p in pools for q in backend.list_work_queues(p)]
    if output is OutputFormat.json:
        print_json(queues)
        return
    _print_queues(queues)


def _print_queues(queues: list[WorkQueueRecord]) -> None:
    table = new_table("pool", "queue", "priority", "concurrency limit", "paused", title="Queues")
    for q in queues:
        table.add_row(
            q.pool_name, q.name, str(q.priority), _limit_text(q.concurrency_limit),
            "yes" if q.paused else "no",
        )  # fmt: skip
    make_console().print(table)


@queues_app.command("inspect")
def inspect_queue(
    name: Annotated[str, typer.Argument(help="The queue's name.")] = "default",
    pool: Annotated[str, typer.Option("--pool", "-p", help="The work pool.")] = "default",
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a work queue (default: the default pool's default queue)."""
    queue = _backend().read_work_queue(pool, name)
    if output is OutputFormat.json:
        print_json(queue)
        return
    print_kv(
        make_console(),
        [
            ("pool", queue.pool_name),
            ("name", queue.name),
            ("priority", queue.priority),
            ("description", queue.description or "-"),
            ("concurrency limit", _limit_text(queue.concurrency_limit)),
            ("paused", "yes" if queue.paused else "no"),
            ("created", fmt_time(queue.created)),
        ],
    )
