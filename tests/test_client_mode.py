"""Client mode: the engine records through a real Sluice server over HTTP.

Every server here is a real ``sluice server start`` subprocess on 127.0.0.1;
what reached the store is checked both through the API and directly in the
server's SQLite database.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice import flow, get_run_logger, task
from sluice.backend.factory import close_backends, get_backend
from sluice.backend.http import HttpBackend
from sluice.backend.local import LocalBackend
from sluice.errors import ConfigurationError, NotFoundError, StoreError
from sluice.schemas import FlowRecord, FlowRunFilter, FlowRunRecord, LogRecord, new_id
from sluice.settings import Settings, StoreSettings
from sluice.states import StateType
from sluice.task_runners import ThreadPoolTaskRunner
from tests import helpers
from tests.server_process import ServerProcess, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client_mode(
    api_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerProcess]:
    """SLUICE_API_URL points at the session's server; backends are closed afterwards."""
    monkeypatch.setenv("SLUICE_API_URL", api_server.url)
    monkeypatch.setenv("SLUICE_STORE_FLUSH_INTERVAL", "0.05")
    yield api_server
    close_backends()


def store_of(server: ServerProcess) -> LocalBackend:
    """The server's database, opened directly (not through the API)."""
    return LocalBackend(Settings(home=server.home))


@task
def double(x: int) -> int:
    return 2 * x


@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
def client_flow(n: int) -> int:
    get_run_logger().info("doubling %d numbers", n)
    futures = double.map(range(n))
    return sum(f.result() for f in futures) + double(n)


def test_get_backend_is_the_http_client_when_api_url_is_set(
    client_mode: ServerProcess,
) -> None:
    backend = get_backend()
    assert isinstance(backend, HttpBackend)
    assert backend is get_backend()
    assert backend.url == client_mode.url


def test_a_bad_api_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_API_URL", "localhost:4200")
    with pytest.raises(ConfigurationError, match="localhost:4200"):
        get_backend()


def test_flow_in_client_mode_is_recorded_through_the_server(
    client_mode: ServerProcess, sluice_home: Path
) -> None:
    assert client_flow(20) == 2 * sum(range(20)) + 40
    run = helpers.only_flow_run("client-flow")
    assert run.state_type is StateType.COMPLETED
    assert run.parameters == {"n": 20}
    assert helpers.state_names(run.id) == ["Pending", "Running", "Completed"]
    tasks = helpers.task_runs(run.id)
    assert len(tasks) == 21
    assert all(t.state_type is StateType.COMPLETED for t in tasks)
    assert helpers.state_names(tasks[0].id)[-1] == "Completed"
    assert "doubling 20 numbers" in helpers.log_text(run.id)
    # It is in the server's database, and this process made no database of its own.
    store = store_of(client_mode)
    try:
        assert len(store.read_task_runs(run.id)) == 21
        assert store.read_flow("client-flow").name == "client_flow"
    finally:
        store.close()
    assert not (sluice_home / "sluice.db").exists()


def test_a_record_the_server_refuses_is_dropped_alone(
    api_server: ServerProcess, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        home=tmp_path, api_url=api_server.url, store=StoreSettings(flush_interval=3600)
    )
    backend = HttpBackend(settings)
    try:
        runs = [FlowRunRecord(new_id(), "refusals", f"ok-{i}") for i in range(5)]
        # A database integer past 64 bits (a parameter may be any size: JSON).
        bad = FlowRunRecord(new_id(), "refusals", "too-big", run_count=2**70)
        for run in (*runs[:2], bad, *runs[2:]):
            backend.write_flow_run(run)
        odd = LogRecord(runs[0].id, None, 20, "app", "lone \udc80 surrogate", runs[0].created)
        backend.write_logs([odd])
        backend.flush()
        for run in runs:
            assert backend.read_flow_run(run.id) == run
        with pytest.raises(NotFoundError):
            backend.read_flow_run(bad.id)
        assert "\ufffd" in backend.read_logs(runs[0].id)[0].message
    finally:
        backend.close()
    err = capfd.readouterr().err
    assert "refused a record, which is dropped (422" in err and bad.id in err


def test_server_restart_mid_flow_loses_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServerProcess(tmp_path / "server-home")
    server.start()
    monkeypatch.setenv("SLUICE_API_URL", server.url)
    monkeypatch.setenv("SLUICE_STORE_FLUSH_INTERVAL", "0.01")
    monkeypatch.setenv("SLUICE_STORE_BATCH_SIZE", "50")
    down, back = threading.Event(), threading.Event()

    @task
    def step(i: int) -> int:
        get_run_logger().info("step %d", i)
        time.sleep(0.002)
        return i

    @flow
    def long_flow() -> int:
        # Runs tasks until the server was killed and is back, then 200 more.
        count, extra = 0, 200
        while not back.is_set() or extra > 0:
            step(count)
            count += 1
            if back.is_set():
                extra -= 1
            if count == 100:
                down.set()
        return count

    def restart() -> None:
        down.wait(30)
        server.kill()
        time.sleep(1.0)  # tasks keep running and recording while nobody listens
        server.start()
        back.set()

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        count = long_flow()
        restarter.join()
        close_backends()  # everything delivered, or this raises
        assert count > 300

        store = store_of(server)
        try:
            (run,) = store.list_flow_runs(FlowRunFilter(flow_name="long-flow"))
            assert run.state_type is StateType.COMPLETED
            tasks = store.read_task_runs(run.id)
            assert sorted(t.call_index for t in tasks) == list(range(count))
            assert all(t.state_type is StateType.COMPLETED for t in tasks)
            for t in tasks:
                # Nothing lost, and a batch whose answer was lost in the kill
                # (sent again, marked resent) stored nothing twice.
                assert [s.name for s in store.read_states(t.id)] == ["Running", "Completed"]
            assert [s.name for s in store.read_states(run.id)] == [
                "Pending",
                "Running",
                "Completed",
            ]
            steps = [r.message for r in store.read_logs(run.id) if r.message.startswith("step ")]
            assert sorted(steps) == sorted(f"step {i}" for i in range(count))
        finally:
            store.close()
    finally:
        back.set()
        restarter.join()
        server.stop()


def test_flush_gives_up_naming_the_url_when_the_server_never_comes_back(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(
        home=tmp_path,
        api_url=url,
        api_retry_timeout=1.0,
        store=StoreSettings(flush_interval=0.01),
    )
    backend = HttpBackend(settings)
    backend.write_flow(FlowRecord("orphan"))
    started = time.monotonic()
    with pytest.raises(StoreError, match=re.escape(url)) as excinfo:
        backend.flush()
    # It waited out the retry timeout, and then gave up rather than hanging.
    assert 1.0 <= time.monotonic() - started < 60.0
    message = str(excinfo.value)
    assert "SLUICE_API_RETRY_TIMEOUT" in message
    assert "Not delivered yet" in message and "1 flow." in message
    with pytest.raises(StoreError, match=r"not written, and lost: 1 flow\b"):
        backend.close()


def test_writes_wait_for_a_server_that_starts_late(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server-home")
    settings = Settings(
        home=tmp_path / "client",
        api_url=server.url,
        api_retry_timeout=30.0,
        store=StoreSettings(flush_interval=0.01),
    )
    backend = HttpBackend(settings)
    run = FlowRunRecord(new_id(), "late", "late-run")
    backend.write_flow_run(run)
    starter = threading.Timer(0.5, server.start)
    starter.start()
    try:
        backend.flush()  # waits for the server instead of failing
        assert backend.read_flow_run(run.id) == run
    finally:
        starter.join()
        backend.close()
        server.stop()


def test_api_key_is_sent_and_a_wrong_one_is_a_configuration_error(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "server-home", env={"SLUICE_API_KEY": "s3cret"})
    server.start()
    store = StoreSettings(flush_interval=0.01)
    good = HttpBackend(Settings(home=tmp_path, api_url=server.url, api_key="s3cret", store=store))
    bad = HttpBackend(Settings(home=tmp_path, api_url=server.url, api_key="nope", store=store))
    try:
        run = FlowRunRecord(new_id(), "keyed", "keyed-run")
        good.write_flow_run(run)
        assert good.read_flow_run(run.id) == run
        with pytest.raises(ConfigurationError, match=re.escape(server.url)):
            bad.read_flow_run(run.id)
        with pytest.raises(NotFoundError):
            good.read_flow_run(new_id())
    finally:
        good.close()
        bad.close()
        server.stop()


CLIENT_FLOW = """
import os, sys, time
from pathlib import Path
from sluice import flow, get_run_logger, task

COUNTER = Path(os.environ["COUNTER_FILE"])

@task
def step(i: int) -> int:
    get_run_logger().info("step %d", i)
    time.sleep(0.01)
    with COUNTER.open("a") as fh:
        fh.write(f"{i}\\n")
    return i

@flow(name="pending-at-the-end")
def pending(n: int) -> int:
    return sum(step(i) for i in range(n))

if __name__ == "__main__":
    from sluice.errors import StoreError
    try:
        pending(int(sys.argv[1]))
    except StoreError as exc:
        print(f"flow call raised: {exc}", file=sys.stderr, flush=True)
    # The test brings the server back, then lets this process exit.
    while not Path(os.environ["GO_FILE"]).exists():
        time.sleep(0.01)
"""


@pytest.mark.timeout(180)
def test_an_outage_past_the_retry_timeout_says_what_is_pending_and_delivery_goes_on(
    tmp_path: Path,
) -> None:
    # The flow's end falls in a server outage longer than the retry timeout: the
    # flow call raises, saying what is still pending and that delivery goes on;
    # the server comes back, the exit handler delivers it all and says so.
    import os
    import subprocess
    import sys

    server = ServerProcess(tmp_path / "server-home")
    server.start()
    script, counter = tmp_path / "pending_flow.py", tmp_path / "counter.txt"
    script.write_text(CLIENT_FLOW)
    stderr_path = tmp_path / "flow-stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_HOME=str(tmp_path / "client-home"),
        SLUICE_API_URL=server.url,
        SLUICE_API_RETRY_TIMEOUT="1",  # the older name of store.retry_timeout
        SLUICE_LOGGING_TASK_STATE_LINES="false",
        COUNTER_FILE=str(counter),
        GO_FILE=str(tmp_path / "go"),
    )

    def waiting_for(what: str, condition: object, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while not condition():  # type: ignore[operator]
            assert proc.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.01)

    n = 100
    proc: subprocess.Popen[bytes] | None = None
    try:
        with stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(script), str(n)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        waiting_for(
            "30 steps", lambda: counter.exists() and len(counter.read_text().split()) >= 30, proc
        )
        server.kill()
        waiting_for(
            "the pending error", lambda: "Not delivered yet" in stderr_path.read_text(), proc
        )
        server.start()
        (tmp_path / "go").touch()
        assert proc.wait(timeout=60) == 0
        output = stderr_path.read_text()
        error = next(line for line in output.splitlines() if "Not delivered yet" in line)
        assert error.startswith("flow call raised: ")
        assert f"to the Sluice server at {server.url}: 1 flow run, " in error
        assert "delivery goes on in the background, and when this process exits" in error
        assert "could not be delivered" not in output and "lost" not in output
        assert output.strip().splitlines()[-1].startswith("sluice: the records reported pending (")
        assert output.strip().endswith(f"have been delivered to {server.url}")

        store = store_of(server)
        try:
            (run,) = store.list_flow_runs(FlowRunFilter(flow_name="pending-at-the-end"))
            assert run.state_type is StateType.COMPLETED
            tasks = store.read_task_runs(run.id)
            assert sorted(t.call_index for t in tasks) == list(range(n))
            assert all(t.state_type is StateType.COMPLETED for t in tasks)
            steps = [r.message for r in store.read_logs(run.id) if r.message.startswith("step ")]
            assert len(steps) == n
        finally:
            store.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        server.stop()
