"""Helpers for the UI tests: the system Chromium under Playwright, a server with real runs.

Chromium is Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it); Playwright
only drives it (its own browser download is never used). Screenshots go to
``test-artifacts/ui-screenshots`` (ignored by git).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess, server_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "tests" / "ui_flows.py"
SCREENSHOTS = REPO / "test-artifacts" / "ui-screenshots"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="UI tests need Debian's chromium at /usr/bin/chromium (.ci/run installs it)",
)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless system Chromium under Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    """Save the whole page as ``test-artifacts/ui-screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def client_env(
    server: ServerProcess, home: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a flow process recording through ``server``."""
    return server_environment(
        home, {"SLUICE_API_URL": server.url, "SLUICE_STORE_FLUSH_INTERVAL": "0.05", **(extra or {})}
    )


def run_flow(
    server: ServerProcess,
    home: Path,
    name: str,
    *params: str,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Run ``tests/ui_flows.py:<name>`` to its end through ``server``; the printed output."""
    command = [sys.executable, "-m", "sluice", "run", f"{FLOWS}:{name}"]
    for param in params:
        command += ["--param", param]
    env = client_env(server, home, extra_env)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def resume_run(server: ServerProcess, home: Path, run_id: str) -> str:
    """``sluice flow-run resume RUN_ID`` through ``server``; the printed output."""
    command = [sys.executable, "-m", "sluice", "flow-run", "resume", run_id]
    done = subprocess.run(
        command, env=client_env(server, home), capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


def start_flow(
    server: ServerProcess, home: Path, name: str, *params: str
) -> subprocess.Popen[bytes]:
    """Start ``tests/ui_flows.py:<name>`` in the background (output discarded)."""
    command = [sys.executable, "-m", "sluice", "run", f"{FLOWS}:{name}"]
    for param in params:
        command += ["--param", param]
    return subprocess.Popen(
        command,
        env=client_env(server, home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def get_json(server: ServerProcess, path: str, key: str | None = None) -> Any:
    request = urllib.request.Request(server.url + path)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for_run(
    server: ServerProcess, flow_name: str, state: str, exclude: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The newest run of ``flow_name`` in ``state`` whose id is not in ``exclude`` (waits 20 s)."""
    deadline = time.monotonic() + 20.0
    path = f"/api/flow_runs?flow_name={flow_name}&state={state}&limit=20"
    while time.monotonic() < deadline:
        for run in get_json(server, path):
            if run["id"] not in exclude:
                return dict(run)
        time.sleep(0.1)
    raise AssertionError(f"no new {flow_name} run reached {state} in 20 s:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a flow process this test started."""
    if process.poll() is None:
        process.kill()
    process.wait(10)
