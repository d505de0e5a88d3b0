"""Shared fixtures: every test gets its own SLUICE_HOME and a clean SLUICE_* environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import ServerProcess


@pytest.fixture(autouse=True)
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolate each test: a fresh home folder and no inherited SLUICE_* settings."""
    for name in list(os.environ):
        if name.startswith("SLUICE_"):
            monkeypatch.delenv(name)
    home = tmp_path / "sluice-home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    yield home


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real Sluice server on 127.0.0.1 for the session, with its own home and store."""
    server = ServerProcess(tmp_path_factory.mktemp("api-server") / "home")
    server.start()
    yield server
    server.stop()
