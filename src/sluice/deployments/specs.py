"""Deployment specs: what ``flow.to_deployment()``, ``sluice.yaml`` and ``sluice deploy``
describe before anything is stored, and the project file's format.

A :class:`DeploymentSpec` names a flow (the object, or an entrypoint to load
it from) and the keyword arguments of :func:`sluice.deployments.deploying.deploy`.
:meth:`DeploymentSpec.apply` validates everything (schedules, parameters)
before the one store write, so a bad spec creates nothing.

The project file (``sluice.yaml``)::

    deployments:
      - name: daily                      # required
        entrypoint: flows/etl.py:etl     # required; relative to the file's folder
        cron: "0 6 * * *"                # or interval: 3600 / "1h", or rrule: "FREQ=..."
        timezone: Europe/London
        parameters: {day: "2024-01-01"}
        work_pool: etl                   # or {name: etl, work_queue_name: high}
        tags: [nightly]

Other keys: ``anchor`` (with ``interval``), ``schedules`` (a list of
``{cron|interval|rrule, timezone, anchor}``), ``work_queue``, ``description``,
``version``, ``paused``, ``concurrency_limit``, ``max_active_runs``, ``catchup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.deployments.deploying import deploy
from sluice.entrypoints import load_flow, split_entrypoint
from sluice.errors import ConfigurationError

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.flows import Flow
    from sluice.schemas import DeploymentRecord

PROJECT_FILE = "sluice.yaml"

#: keys of a project file entry passed through to ``deploy`` as they are
_PASSED = (
    "cron",
    "interval",
    "rrule",
    "timezone",
    "parameters",
    "tags",
    "description",
    "version",
    "paused",
    "concurrency_limit",
    "max_active_runs",
    "catchup",
    "schedules",
)
_KNOWN = frozenset((*_PASSED, "name", "entrypoint", "anchor", "work_pool", "work_queue"))


@dataclass
class DeploymentSpec:
    """A deployment to create: a flow (or its entrypoint) and ``deploy`` options."""

    name: str
    flow: Flow[..., Any] | None = None
    entrypoint: str | None = None
    working_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def load_flow(self) -> Flow[..., Any]:
        """The flow object, loading the entrypoint (relative to ``working_dir``) if needed.

        Raises:
            EntrypointError: the entrypoint cannot be loaded.
        """
        if self.flow is not None:
            return self.flow

        assert self.entrypoint is not None
        location, attr = split_entrypoint(self.entrypoint)
        if self.working_dir and (location.endswith(".py") or "/" in location):
            path = Path(location)
            if not path.is_absolute():
                location = str(Path(self.working_dir) / path)
        self.flow = load_flow(f"{location}:{attr}")
        return self.flow

    def apply(self, backend: Backend | None = None) -> DeploymentRecord:
        """Create or update the deployment; the stored record."""
        return deploy(
            self.load_flow(),
            name=self.name,
            entrypoint=self.entrypoint,
            working_dir=self.working_dir,
            backend=backend,
            **self.options,
        )


def find_project_file(start: Path | None = None) -> Path | None:
    """``sluice.yaml`` in ``start`` (default: the current directory), if there is one."""
    path = (start or Path.cwd()) / PROJECT_FILE
    return path if path.is_file() else None


def load_project_file(path: Path) -> list[DeploymentSpec]:
    """The deployments a project file describes, checked for shape (not yet loaded).

    Raises:
        ConfigurationError: unreadable YAML, or an entry naming the key at fault.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    entries = data.get("deployments") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: expected a top-level 'deployments:' list")
    folder = str(path.parent.resolve())
    specs = [
        _spec_of(entry, f"{path}: deployment {i + 1}", folder) for i, entry in enumerate(entries)
    ]
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1:
            raise ConfigurationError(f"{path}: the deployment name {name!r} is used twice")
    return specs


def _spec_of(entry: Any, where: str, folder: str) -> DeploymentSpec:
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping of settings")
    unknown = sorted(set(entry) - _KNOWN)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(_KNOWN))}"
        )
    for key in ("name", "entrypoint"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigurationError(f"{where}: {key!r} is required (text)")
    options: dict[str, Any] = {k: entry[k] for k in _PASSED if k in entry}
    if "anchor" in entry:
        options["anchor_date"] = str(entry["anchor"])
    pool = entry.get("work_pool")
    if isinstance(pool, Mapping):
        options["work_pool_name"] = str(pool.get("name", "default"))
        if pool.get("work_queue_name"):
            options["work_queue_name"] = str(pool["work_queue_name"])
    elif pool is not None:
        options["work_pool_name"] = str(pool)
    if entry.get("work_queue") is not None:
        options["work_queue_name"] = str(entry["work_queue"])
    return DeploymentSpec(
        name=entry["name"], entrypoint=entry["entrypoint"], working_dir=folder, options=options
    )


def write_project_entry(path: Path, entry: Mapping[str, Any]) -> None:
    """Add ``entry`` to the project file (replacing the one of the same name), creating it.

    Raises:
        ConfigurationError: an existing file that is not a project file.
    """
    import yaml

    entries: list[Any] = []
    if path.is_file():
        load_project_file(path)  # refuses a file that is not one
        entries = list(yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"])
    entries = [e for e in entries if e.get("name") != entry["name"]] + [dict(entry)]
    path.write_text(yaml.safe_dump({"deployments": entries}, sort_keys=False), encoding="utf-8")
