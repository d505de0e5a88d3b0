"""The name Sluice is installed under, for install hints and metadata lookups.

The import name and the command are ``sluice``; the distribution on the package
index is ``sluice-workflows`` (``sluice`` there is an unrelated zfs snapshot
tool). Keep :data:`DISTRIBUTION` equal to ``[project] name`` in pyproject.toml
(a test checks it).
"""

from __future__ import annotations

#: the distribution name: ``pip install sluice-workflows``
DISTRIBUTION = "sluice-workflows"


def install_command(extra: str | None = None) -> str:
    """The command that installs Sluice, or Sluice with ``extra``."""
    target = DISTRIBUTION if extra is None else f"{DISTRIBUTION}[{extra}]"
    return f'pip install "{target}"'


def installed_version() -> str:
    """The installed distribution's version (``"unknown"`` when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
