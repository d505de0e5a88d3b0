"""``retry_condition_fn(task, task_run, state)``, as Prefect calls it.

Prefect's documented pattern: the condition receives the task, its task run
and the attempt's Failed state, and calls ``state.result()`` to get the
exception back, e.g. to retry only when a server answered 503. Here a real
HTTP server on 127.0.0.1 answers the task's requests.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from sluice import flow, task
from sluice.schemas import TaskRunRecord
from sluice.states import State, StateType
from tests.helpers import log_text, only_flow_run, task_runs


class StubApi:
    """A local HTTP server: ``/flaky`` answers 503 twice then 200, ``/gone`` always 404."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.hits[self.path] += 1
                status = 200
                if self.path == "/gone":
                    status = 404
                elif self.path == "/flaky" and stub.hits[self.path] <= 2:
                    status = 503
                body = b'{"ok": true}' if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def api() -> Iterator[StubApi]:
    stub = StubApi()
    stub.thread.start()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


SEEN: list[tuple[Any, Any, State]] = []


def retry_on_503(task: Any, task_run: Any, state: State) -> bool:
    """Retry only when the server was unavailable."""
    SEEN.append((task, task_run, state))
    try:
        state.result()
    except httpx.HTTPStatusError as exc:
        return exc.response.status_code == 503
    except httpx.ConnectError:
        return False
    return False


@task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_on_503)
def fetch(url: str) -> Any:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


@flow
def fetch_flow(url: str) -> Any:
    return fetch(url)


def test_a_503_is_retried_until_the_server_answers_a_404_is_not(api: StubApi) -> None:
    SEEN.clear()
    assert fetch_flow(f"{api.url}/flaky") == {"ok": True}
    assert api.hits["/flaky"] == 3
    (run,) = task_runs(only_flow_run("fetch_flow").id)
    assert (run.state_type, run.run_count) == (StateType.COMPLETED, 3)
    task_obj, task_run, state = SEEN[0]
    assert task_obj is fetch
    # The same kind of record the task's hooks receive.
    assert isinstance(task_run, TaskRunRecord) and task_run.id == run.id
    assert state.is_failed() and "503" in (state.message or "")

    # Not found is final: one request, no retry.
    failed = fetch_flow(f"{api.url}/gone", return_state=True)
    assert failed.is_failed()
    assert api.hits["/gone"] == 1
    with pytest.raises(httpx.HTTPStatusError):
        failed.result()
    gone = task_runs(failed.run_id or "")
    assert [(r.state_type, r.run_count) for r in gone] == [(StateType.FAILED, 1)]


def test_async_and_partial_conditions(api: StubApi) -> None:
    async def async_retry_on(task: Any, task_run: Any, state: State, status: int) -> bool:
        try:
            state.result()
        except httpx.HTTPStatusError as exc:
            return exc.response.status_code == status
        return False

    retry_on_503_async = functools.partial(async_retry_on, status=503)

    @task(retries=2, retry_condition_fn=retry_on_503_async)
    def fetch_async_condition(url: str) -> Any:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return response.json()

    @flow
    def uses_async_condition(url: str) -> Any:
        return fetch_async_condition(url)

    assert uses_async_condition(f"{api.url}/flaky") == {"ok": True}
    assert api.hits["/flaky"] == 3


def test_a_broken_condition_is_logged_and_means_no_retry() -> None:
    def broken(task: Any, task_run: Any, state: State) -> bool:
        raise RuntimeError("bug in the condition")

    @task(retries=3, retry_condition_fn=broken)
    def always_fails() -> None:
        raise ValueError("nope")

    @flow
    def guarded() -> None:
        always_fails()

    assert guarded(return_state=True).is_failed()
    run = only_flow_run("guarded")
    assert task_runs(run.id)[0].run_count == 1
    assert "bug in the condition" in log_text(run.id)


def test_the_calling_form_is_decided_at_decoration() -> None:
    with pytest.raises(TypeError, match="task, task_run, state"):

        @task(retries=1, retry_condition_fn=lambda task, state: True)
        def never() -> None: ...

    # Sluice's own older form, a single parameter, still gets the exception.
    seen: list[BaseException] = []

    def only_key_errors(exc: BaseException) -> bool:
        seen.append(exc)
        return isinstance(exc, KeyError)

    @task(retries=2, retry_condition_fn=only_key_errors)
    def lookup() -> None:
        raise KeyError("missing")

    @flow
    def uses_old_form() -> None:
        lookup()

    assert uses_old_form(return_state=True).is_failed()
    assert [type(e) for e in seen] == [KeyError, KeyError]
