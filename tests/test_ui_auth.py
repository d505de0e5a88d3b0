"""With SLUICE_API_KEY set, the UI asks for the key, keeps it, and sends it (real Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess
from tests.ui_browser import chromium, needs_chromium, run_flow, screenshot

pytestmark = [pytest.mark.integration, needs_chromium]

KEY = "ui-test-key"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "server", env={"SLUICE_API_KEY": KEY})
    process.start()
    yield process
    process.stop()


def test_the_ui_asks_for_the_key_and_uses_it(keyed: ServerProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # A real run recorded through the keyed server (the client sends the key too).
    env_home = tmp_path / "client"
    output = run_flow(keyed, env_home, "demo", extra_env={"SLUICE_API_KEY": KEY})
    assert "finished in state Completed" in output, output
    with chromium() as browser:
        context = browser.new_context()
        page: Any = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{keyed.url}/runs")
        expect(page.locator("#auth")).to_be_visible()
        screenshot(page, "api-key-prompt")
        page.fill("#auth-key", "wrong")
        page.click("#auth-form button[type=submit]")
        expect(page.locator("#auth-error")).to_be_visible()
        page.fill("#auth-key", KEY)
        page.click("#auth-form button[type=submit]")
        expect(page.locator("#auth")).to_be_hidden()
        expect(page.locator("#runs tbody tr[data-id]")).to_have_count(2)  # demo and its child
        assert page.evaluate("localStorage.getItem('sluice.apiKey')") == KEY
        page.reload()
        expect(page.locator("#runs tbody tr[data-id]")).to_have_count(2)
        expect(page.locator("#auth")).to_be_hidden()
        page.click("#forget-key")
        expect(page.locator("#auth")).to_be_visible()
        context.close()
        assert errors == []
