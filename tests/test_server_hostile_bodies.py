"""Bodies a lax JSON parser takes but nothing can use: a 422 naming the problem, never a
5xx or a dropped connection, and nothing stored (a real uvicorn server).

Each cause the fuzzer found has its case here: NaN/Infinity literals and lone
surrogates in a refused field (the 422 answer could not be encoded, so the
connection dropped), ``1e999999``, and 5,000-deep nesting on ``/api/ingest``
(RecursionError).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.server.errors import plain
from tests.server_helpers import flow_run, ingest_batch, payload
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("hostile") / "home")
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
        # Whatever was refused, nothing of it was stored.
        assert client.get("/api/flow_runs").json() == []
        assert client.get("/api/deployments").json() == []
        assert [p["name"] for p in client.get("/api/work_pools").json()] == []


def _ingest_body(field: str, literal: str) -> bytes:
    """An ingest batch of one flow run whose ``field`` holds ``literal`` (raw JSON text)."""
    _, write = flow_run()
    body = payload(ingest_batch(flow_runs=[write]))
    body["flow_runs"][0][field] = "@@"
    return json.dumps(body).encode().replace(b'"@@"', literal.encode())


def _deployment_body(field: str, literal: str) -> bytes:
    body = {"name": "d", "flow_name": "f", "entrypoint": "f.py:f", field: "@@"}
    return json.dumps(body).encode().replace(b'"@@"', literal.encode())


# (method, path, body) where the literal stands in a field the route refuses
def _targets(literal: str) -> list[tuple[str, str, bytes]]:
    return [
        ("POST", "/api/ingest", _ingest_body("name", literal)),
        ("PUT", "/api/deployments", _deployment_body("name", literal)),
        ("POST", "/api/work_pools", json.dumps({"name": "@@"}).encode().replace(
            b'"@@"', literal.encode())),
        ("PATCH", "/api/work_pools/nope", f'{{"paused": {literal}}}'.encode()),
    ]  # fmt: skip


def _send(http: httpx.Client, method: str, path: str, body: bytes) -> httpx.Response:
    return http.request(method, path, content=body, headers=JSON)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_422(http: httpx.Client, literal: str) -> None:
    for method, path, body in _targets(literal):
        response = _send(http, method, path, body)
        assert response.status_code == 422, (path, response.text)
        assert "NaN and Infinity are not JSON numbers" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize("literal", ["1e999999", "-1e999999"])
def test_numbers_beyond_a_float_are_422_naming_the_field(http: httpx.Client, literal: str) -> None:
    for method, path, body in _targets(literal):
        response = _send(http, method, path, body)
        assert response.status_code == 422, (path, response.text)
        (error,) = response.json()["detail"]
        assert error["msg"] == "number out of range (not a finite number)"
        assert error["loc"][0] == "body" and len(error["loc"]) >= 2


@pytest.mark.parametrize("literal", ['"\\ud800"', '"a\\udfffb"'])
def test_lone_surrogate_values_are_422_naming_the_field(http: httpx.Client, literal: str) -> None:
    response = _send(http, "POST", "/api/ingest", _ingest_body("name", literal))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "flow_runs", 0, "name"]
    assert error["msg"] == "string holds a lone surrogate (not UTF-8)"
    response = _send(http, "PUT", "/api/deployments", _deployment_body("description", literal))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "description"]


def test_a_lone_surrogate_key_is_422_and_echoed_escaped(http: httpx.Client) -> None:
    body = _deployment_body("parameters", '{"x\\ud800": 1}')
    response = _send(http, "PUT", "/api/deployments", body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    # The answer names the key, escaped: a lone surrogate cannot be sent as UTF-8.
    assert error["loc"] == ["body", "parameters", "x\\ud800"]
    assert error["msg"] == "key holds a lone surrogate (not UTF-8)"


@pytest.mark.parametrize("path", ["/api/ingest", "/api/deployments", "/api/flow_runs/mark_lapsed"])
@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_5000_deep_nesting_is_422(http: httpx.Client, path: str, opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    deep = (opening * 5000 + "1" + closing * 5000).encode()
    method = "PUT" if path == "/api/deployments" else "POST"
    response = _send(http, method, path, deep)
    assert response.status_code == 422, response.text
    assert "nested deeper than 200 levels" in response.json()["detail"][0]["msg"]
    # ... also inside a body that is otherwise right.
    response = _send(http, "POST", "/api/ingest", _ingest_body("parameters", deep.decode()))
    assert response.status_code == 422, response.text


def test_integers_past_python_s_digit_limit_are_422(http: httpx.Client) -> None:
    response = _send(http, "PUT", "/api/deployments", _deployment_body("parameters", "9" * 5000))
    assert response.status_code == 422, response.text
    assert "number out of range" in response.json()["detail"][0]["msg"]


def test_the_connection_survives_a_refusal(server: ServerProcess) -> None:
    # One keep-alive connection: a refused body must not take it down with it.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for literal in ("NaN", "1e999999", '"\\ud800"'):
            for method, path, body in _targets(literal):
                assert _send(client, method, path, body).status_code == 422
        assert client.get("/api/health").status_code == 200


def test_error_answers_echo_only_what_json_can_carry() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    echoed = plain(
        {"nan": float("nan"), "inf": float("-inf"), "s\ud800": "x\udc00y", "deep": deep,
         "long": "z" * 5000, "other": Path("/p"), "bytes": b"\xff"}
    )  # fmt: skip
    text = json.dumps(echoed, allow_nan=False, ensure_ascii=False).encode("utf-8")
    back = json.loads(text)
    assert back["nan"] == "nan" and back["inf"] == "-inf"
    assert back["s\\ud800"] == "x\\udc00y"
    assert len(back["long"]) == 1003 and back["other"] == "/p" and back["bytes"] == "\ufffd"
    assert "..." in json.dumps(back["deep"])
