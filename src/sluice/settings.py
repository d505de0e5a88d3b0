"""Settings: one typed tree, read from ``$SLUICE_HOME/config.toml`` and ``SLUICE_*``.

Each field's environment name is derived from its path: ``logging.level`` is
``SLUICE_LOGGING_LEVEL``; top-level fields are ``SLUICE_<NAME>``. Environment
beats the config file, which beats the defaults. Nothing is read at import
time: call :func:`load_settings` (or pass a :class:`Settings` in).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class LoggingSettings:
    #: level of the console lines Sluice prints (DEBUG, INFO, WARNING ...)
    level: str = "INFO"
    #: lowest level of run logs kept in the store
    store_level: str = "INFO"
    #: print one line per task run state change on the console
    task_state_lines: bool = True


@dataclass(frozen=True)
class StoreSettings:
    #: client mode: records buffered before they are sent without waiting
    batch_size: int = 2000
    #: client mode: longest a record waits before it is sent, in seconds (the
    #: embedded writer commits as soon as it is idle)
    flush_interval: float = 0.5
    #: total time a write keeps retrying while SQLite reports "database is locked"
    lock_timeout: float = 60.0
    #: seconds the writer waits out an outage (database or server unreachable, disk
    #: full) before embedded mode keeps the records in a spool file and client mode
    #: reports them pending (``SLUICE_API_RETRY_TIMEOUT`` is the older name)
    retry_timeout: float = 120.0


@dataclass(frozen=True)
class ResultSettings:
    #: persist every task's and flow's return value unless told otherwise
    persist_by_default: bool = True
    #: serialized results up to this many bytes are kept in the run's row
    inline_threshold: int = 65536
    #: folder for larger results; empty means ``$SLUICE_HOME/storage``
    storage: str = ""


@dataclass(frozen=True)
class SchedulerSettings:
    #: seconds between two passes of the scheduler service (server, serve, workers)
    interval: float = 5.0
    #: runs of schedules are created this many seconds ahead of their time
    horizon: float = 600.0
    #: upcoming runs created ahead per deployment, at most
    max_runs: int = 50
    #: a scheduled run not started this many seconds after its time is Late (and,
    #: after downtime, an older missed tick counts as missed)
    grace: float = 60.0


@dataclass(frozen=True)
class ServerSettings:
    #: run logs older than this many days are deleted by the server (0: kept forever)
    log_retention_days: float = 0.0
    #: seconds between two passes of the log retention service
    log_retention_interval: float = 3600.0
    #: more names browsers reach the server by (a reverse proxy's, a LAN name),
    #: comma-separated, each ``name`` or ``name:port``; ``*`` turns the check off.
    #: The address it binds (and localhost, for a loopback one) is always served.
    allowed_hosts: str = ""


@dataclass(frozen=True)
class Settings:
    """All of Sluice's settings."""

    home: Path = field(default_factory=lambda: Path.home() / ".sluice")
    #: SQLAlchemy URL; empty means ``sqlite:///$SLUICE_HOME/sluice.db``
    database_url: str = ""
    #: a Sluice server's API URL; set, the engine records over HTTP instead
    api_url: str = ""
    #: sent as ``Authorization: Bearer <key>`` to the server (and required by it when set)
    api_key: str = ""
    #: seconds between a running flow's heartbeats
    heartbeat_interval: float = 10.0
    #: a Running flow run whose heartbeat is older than this is marked Crashed
    heartbeat_timeout: float = 60.0
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    results: ResultSettings = field(default_factory=ResultSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    #: the older name of ``store.retry_timeout``, still accepted (it wins when given here)
    api_retry_timeout: InitVar[float | None] = None

    def __post_init__(self, api_retry_timeout: float | None) -> None:
        if api_retry_timeout is not None:
            store = dataclasses.replace(self.store, retry_timeout=float(api_retry_timeout))
            object.__setattr__(self, "store", store)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in the home folder."""
        return self.database_url or f"sqlite:///{self.home / 'sluice.db'}"

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"


def _older_retry_timeout(self: Settings) -> float:
    """The older name of ``store.retry_timeout`` (read here, and given to ``Settings()``)."""
    return self.store.retry_timeout


# Set after the class is built: the dataclass takes ``api_retry_timeout`` as an
# init-only argument, and reading the attribute keeps working too.
Settings.api_retry_timeout = property(_older_retry_timeout)  # type: ignore[attr-defined]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from defaults, the config file and the environment.

    Raises:
        ConfigurationError: the config file is not valid TOML or a value has the wrong type.
    """
    env = os.environ if environ is None else environ
    home = home_folder(env)
    file_values = _read_config_file(home / "config.toml")
    file_values, env = _renamed_settings(file_values, env)
    settings: Settings = _build(
        Settings, file_values, env, prefix="SLUICE_", overrides={"home": home}
    )
    return settings


def home_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$SLUICE_HOME``, else ``~/.sluice`` (read without the config file: it lives there)."""
    env = os.environ if environ is None else environ
    return Path(env.get("SLUICE_HOME") or (Path.home() / ".sluice")).expanduser()


#: settings renamed, old name -> (new table, new key): the old name is read when
#: the new one is not given (environment ``SLUICE_<OLD>``, or a top-level key in the file)
RENAMED = {"api_retry_timeout": ("store", "retry_timeout")}


def _renamed_settings(
    file_values: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], Mapping[str, str]]:
    """The config file's values and the environment with old setting names read as new."""
    file_values = dict(file_values)
    renamed_env: dict[str, str] | None = None
    for old, (table, key) in RENAMED.items():
        old_env, new_env = f"SLUICE_{old.upper()}", f"SLUICE_{table.upper()}_{key.upper()}"
        if old_env in env and new_env not in env:
            renamed_env = renamed_env if renamed_env is not None else dict(env)
            renamed_env[new_env] = env[old_env]
        if old in file_values:
            value = file_values.pop(old)
            section = dict(file_values.get(table) or {})
            section.setdefault(key, value)
            file_values[table] = section
    return file_values, (renamed_env if renamed_env is not None else env)


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        values: dict[str, Any] = tomllib.loads(path.read_text())
        return values
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"Cannot read config file {path}: {exc}") from exc


def _build(
    cls: Any,
    file_values: Mapping[str, Any],
    env: Mapping[str, str],
    prefix: str,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    kwargs: dict[str, Any] = dict(overrides or {})
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            continue
        env_name = f"{prefix}{f.name.upper()}"
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[operator]
        if dataclasses.is_dataclass(default):
            nested = file_values.get(f.name, {})
            kwargs[f.name] = _build(type(default), nested, env, f"{env_name}_")
        elif env_name in env:
            kwargs[f.name] = _coerce(env[env_name], default, env_name)
        elif f.name in file_values:
            kwargs[f.name] = _coerce(file_values[f.name], default, f.name)
    return cls(**kwargs)


def _coerce(raw: Any, default: Any, name: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, (int, float)):
            return type(default)(raw)
        if isinstance(default, Path):
            return Path(str(raw)).expanduser()
        if isinstance(raw, list):  # a TOML list for a comma-separated setting
            return ",".join(str(item) for item in raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Setting {name} has an invalid value {raw!r}: {exc}") from exc


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """Settings as plain values (for ``sluice config view``)."""
    out = dataclasses.asdict(settings)
    out["home"] = str(settings.home)
    return out
