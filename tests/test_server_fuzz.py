"""Fuzz every API operation from its own OpenAPI schema against a real uvicorn server.

The property is the contract's "never a 5xx for a client mistake" (nor a
dropped connection). Three kinds of requests, each over every operation the
server publishes:

- schemathesis' cases, valid and invalid for the schema (both generation modes);
- hostile JSON (``tests/hostile_json.py``): NaN, Infinity, lone surrogates in
  keys and values, ``1e999999``, huge integers and 5,000-deep nesting, put at
  a random position of a schema-generated body;
- bodies sent with content types other than JSON (refused: 415).

Bounded (a few examples per operation) so it stays part of the suite; the
server's output must hold no traceback at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.loaders import from_dict

from sluice.server.app import create_app
from sluice.settings import Settings
from tests.hostile_json import HOSTILE_KINDS, VALID_JSON_KINDS, hostile_body
from tests.server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home: Path = tmp_path_factory.mktemp("fuzz-home")
    process = ServerProcess(home, env={"SLUICE_LOGGING_LEVEL": "WARNING"})
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


# The schema the server publishes, built in process at collection (building the
# app opens nothing); the cases are sent to the real server. schemathesis'
# lazy fixture loader fails on this pytest version, hence not from_url.
schema = from_dict(create_app(Settings()).openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}
WITH_BODY = sorted(label for label, op in OPERATIONS.items() if list(op.body))
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_published_schema_is_the_one_fuzzed(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/api/openapi.json").json() == schema.raw_schema


#: state-changing operations that read no body (fuzzed by schemathesis alone)
BODYLESS = {
    "POST /api/flow_runs/{flow_run_id}/cancel",
    "POST /api/flow_runs/{flow_run_id}/attempt",
    "DELETE /api/deployments/{flow_name}/{name}",
    "DELETE /api/work_pools/{name}",
    "DELETE /api/work_pools/{name}/queues/{queue}",
}


def test_every_operation_is_fuzzed() -> None:
    # A new route that reads a body must be in WITH_BODY (declared in its schema),
    # or it escapes the hostile-body fuzzing.
    changing = {label for label in OPERATIONS if not label.startswith("GET ")}
    assert changing == set(WITH_BODY) | BODYLESS
    # schemathesis sends cases both valid and invalid for the schema.
    modes = set(schema.config.generation.modes)
    assert modes == {GenerationMode.POSITIVE, GenerationMode.NEGATIVE}


@schema.parametrize()
@settings(FUZZ, max_examples=20)
def test_no_server_errors(case: schemathesis.Case, server: ServerProcess) -> None:
    case.call_and_validate(base_url=server.url, checks=[not_a_server_error])


def _send(http: httpx.Client, case: schemathesis.Case, content: bytes, content_type: str) -> int:
    """Send ``case`` with ``content`` as its body; the status (a dropped
    connection fails the test)."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=str(http.base_url))
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "content-type"}
    if content_type:
        headers["Content-Type"] = content_type
    response = http.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=headers,
        content=content,
    )  # fmt: skip
    return response.status_code


@pytest.mark.parametrize("label", WITH_BODY)
@settings(FUZZ, max_examples=5)
@given(data=st.data(), choice=st.integers(min_value=0, max_value=10_000))
def test_hostile_json_gets_no_server_error(
    label: str, data: st.DataObject, choice: int, http: httpx.Client
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy(GenerationMode.POSITIVE))
    body = case.body if isinstance(case.body, (dict, list, str, int, float)) else None
    for kind in HOSTILE_KINDS:
        status = _send(http, case, hostile_body(body, kind, choice), "application/json")
        if kind in VALID_JSON_KINDS:
            assert status < 500, f"{label} with {kind}: {status}"
        else:  # refused while parsing, wherever it stands
            assert status == 422, f"{label} with {kind}: {status}"


@pytest.mark.parametrize("label", WITH_BODY)
@settings(FUZZ, max_examples=3)
@given(data=st.data())
def test_other_content_types_are_415(label: str, data: st.DataObject, http: httpx.Client) -> None:
    # Forms and text/plain are what another site's page can send: refused (415) by
    # every operation that changes state, before its body is read.
    case = data.draw(OPERATIONS[label].as_strategy(GenerationMode.POSITIVE))
    body = b'{"name": "x"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                         "application/xml", ""):  # fmt: skip
        status = _send(http, case, body, content_type)
        assert status == 415, f"{label} as {content_type!r}: {status}"
