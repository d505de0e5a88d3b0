"""Fuzz the API from its own OpenAPI schema (schemathesis) against a real uvicorn server.

Bounded (a few examples per operation) so it stays part of the suite; the
property is the contract's "never a 5xx for a client mistake".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.loaders import from_dict

from sluice.server.app import create_app
from sluice.settings import Settings
from tests.test_server_process import free_port, wait_healthy


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("fuzz-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice", "server", "start", "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out, out.decode()


# The schema the server publishes, built in process at collection (building the
# app opens nothing); the cases are sent to the real server. schemathesis'
# lazy fixture loader fails on this pytest version, hence not from_url.
schema = from_dict(create_app(Settings()).openapi())


def test_published_schema_is_the_one_fuzzed(server_url: str) -> None:
    import httpx

    assert httpx.get(f"{server_url}/api/openapi.json").json() == schema.raw_schema


@pytest.mark.integration
@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors(case: schemathesis.Case, server_url: str) -> None:
    case.call_and_validate(base_url=server_url, checks=[not_a_server_error])
