"""Three worker processes racing to claim 300 runs: each run is claimed exactly once.

Real subprocesses on one store (an SQLite file; a PostgreSQL database when
``SLUICE_TEST_PG_URL`` is set), released together so their claims overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from sluice.backend.local import LocalBackend
from sluice.schemas import WorkPoolRecord
from sluice.settings import Settings, StoreSettings
from tests.deployment_backends import (  # noqa: F401 (the fixture)
    PG_URL,
    at,
    deployments_pg_url,
    empty_store,
    make_deployment,
)

RUNS = 300
WORKERS = 3

_CLAIMER = textwrap.dedent(
    """
    import json, os, sys, time, random
    from pathlib import Path
    from sluice.backend.local import LocalBackend
    from sluice.settings import Settings, StoreSettings

    home, url, name, go = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    settings = Settings(home=Path(home), database_url=url,
                        store=StoreSettings(lock_timeout=60.0))
    backend = LocalBackend(settings)
    backend.list_work_pools()  # connected and warm before the start line
    (go.parent / f"ready-{name}").touch()
    while not go.exists():
        time.sleep(0.002)
    claimed, empty = [], 0
    while empty < 3:
        got = backend.claim_flow_runs("race", worker_name=name, limit=random.randint(1, 7))
        claimed += [r.id for r in got]
        empty = 0 if got else empty + 1
        time.sleep(0.001)  # as a worker would: start what it claimed, then ask again
    backend.close()
    print(json.dumps(claimed))
    """
)


def _race(tmp_path: Path, url: str, pool_limit: int | None = None) -> list[list[str]]:
    store = StoreSettings(lock_timeout=30.0)
    backend = LocalBackend(Settings(home=tmp_path / "home", database_url=url, store=store))
    try:
        if url:
            empty_store(backend)
        backend.create_work_pool(WorkPoolRecord("race", concurrency_limit=pool_limit))
        dep = backend.upsert_deployment(make_deployment(work_pool_name="race"))
        ticks = [at(i) for i in range(RUNS)]
        assert backend.create_scheduled_runs(dep.id, times=ticks) == RUNS
        go = tmp_path / "go"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CLAIMER, str(tmp_path / "home"), url, f"w{i}", str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i in range(WORKERS)
        ]
        try:
            deadline = time.monotonic() + 60
            ready = [tmp_path / f"ready-w{i}" for i in range(WORKERS)]
            while not all(r.exists() for r in ready) and time.monotonic() < deadline:
                time.sleep(0.01)
            go.touch()
            outputs = [proc.communicate(timeout=100) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        results = []
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
            results.append(json.loads(out))
        counts = Counter(run_id for claimed in results for run_id in claimed)
        if pool_limit is not None:
            assert len(counts) == pool_limit  # never more than the pool allows at once
            assert max(counts.values()) == 1
            return results
        assert len(counts) == RUNS
        assert max(counts.values()) == 1
        # Contention was real: no single worker took everything.
        assert sum(1 for claimed in results if claimed) >= 2
        runs = backend.list_deployment_runs(dep.id, limit=0)
        assert {r.worker_name for r in runs} == {f"w{i}" for i, c in enumerate(results) if c}
        pending_entries = Counter(
            s.name for r in runs[:50] for s in backend.read_states(r.id) if s.name == "Pending"
        )
        assert pending_entries["Pending"] == 50  # one claim recorded per run
        return results
    finally:
        backend.close()


@pytest.mark.slow
@pytest.mark.integration
def test_three_workers_claim_each_run_once_on_sqlite(tmp_path: Path) -> None:
    _race(tmp_path, "")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not PG_URL, reason="needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
def test_three_workers_claim_each_run_once_on_postgresql(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _race(tmp_path, request.getfixturevalue("deployments_pg_url"))


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_racing_workers_never_exceed_the_pool_limit(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    if kind == "postgresql" and not PG_URL:
        pytest.skip("needs SLUICE_TEST_PG_URL (a PostgreSQL server)")
    url = request.getfixturevalue("deployments_pg_url") if kind == "postgresql" else ""
    _race(tmp_path, url, pool_limit=5)
