"""Packaging: the distribution name, what the plain install holds, install lines in the docs,
a build without deprecation warnings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.distribution import DISTRIBUTION, install_command

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_distribution_is_not_the_index_s_other_sluice() -> None:
    assert PROJECT["name"] == DISTRIBUTION == "sluice-workflows"
    assert PROJECT["scripts"] == {"sluice": "sluice.cli.main:main"}
    assert install_command("dask") == 'pip install "sluice-workflows[dask]"'


def test_the_plain_install_has_the_server_ui_client_and_postgres() -> None:
    plain = _names(PROJECT["dependencies"])
    assert {"fastapi", "uvicorn", "jinja2", "fastapi-offline", "httpx", "msgspec"} <= plain
    assert "psycopg" in plain
    extras = PROJECT["optional-dependencies"]
    # Only Dask (and the dev tools) are extras; the old extra names stay, empty.
    assert {name for name, reqs in extras.items() if reqs} == {"dask", "dev"}
    assert extras["server"] == extras["client"] == extras["postgres"] == []


def test_the_license_is_an_spdx_expression() -> None:
    # A TOML table (`{ text = ... }`) is deprecated by setuptools (PEP 639).
    assert PROJECT["license"] == "Apache-2.0"


INSTALL = re.compile(r"pip install ([^\n`]*)")


def test_every_install_line_in_the_docs_names_the_distribution() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages += sorted((ROOT / "examples").glob("*/README.md"))
    seen = 0
    for page in pages:
        for line in INSTALL.findall(page.read_text()):
            for word in line.replace('"', " ").replace("'", " ").split():
                if word.startswith("sluice"):
                    seen += 1
                    assert word.startswith(DISTRIBUTION), f"{page.name}: pip install {line}"
    assert seen >= 3


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(300)
def test_building_the_wheel_prints_no_deprecation_warning(tmp_path: Path) -> None:
    # A copy: setuptools builds in the source tree (build/, *.egg-info).
    tree = tmp_path / "tree"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", tree / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", str(tree), "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=280,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 and "setuptools" in output and "No matching distribution" in output:
        pytest.skip("the package index (for the isolated build's setuptools>=77) is unreachable")
    assert done.returncode == 0, output[-3000:]
    warnings = [
        line for line in output.splitlines()
        if re.search(r"deprecat|Warning", line) and "Location 'file:" not in line
    ]  # fmt: skip
    assert warnings == [], warnings
    assert [p.name for p in wheels.glob("*.whl")] == ["sluice_workflows-0.1.0-py3-none-any.whl"]
