"""The settings keys the CLI can show and set, and a small TOML writer for them.

Keys are derived from the :class:`~sluice.settings.Settings` dataclasses, so a
new setting is settable without touching the CLI. A key ``logging.level`` is
stored as ``level`` in a ``[logging]`` table, which is how ``load_settings``
reads nested settings; its environment name is ``SLUICE_LOGGING_LEVEL``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.cli.errors import CliError
from sluice.errors import ConfigurationError
from sluice.settings import Settings

#: Friendlier spellings accepted by ``config set/unset``.
ALIASES = {
    "api.url": "api_url",
    "api.key": "api_key",
    # renamed settings (see sluice.settings.RENAMED), by old key and old env name
    "api_retry_timeout": "store.retry_timeout",
    "sluice_api_retry_timeout": "store.retry_timeout",
}
#: Keys whose value is never printed in full.
SECRET_KEYS = frozenset({"api_key"})
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SettingKey:
    """One leaf setting: ``path`` in the config file, its default and env name."""

    path: tuple[str, ...]
    default: Any
    env_name: str

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def setting_keys() -> dict[str, SettingKey]:
    """Every leaf setting by dotted key, in declaration order."""
    keys: dict[str, SettingKey] = {}
    _collect(Settings(), (), "SLUICE_", keys)
    return keys


def _collect(obj: Any, path: tuple[str, ...], prefix: str, out: dict[str, SettingKey]) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        env_name = f"{prefix}{f.name.upper()}"
        if dataclasses.is_dataclass(value):
            _collect(value, (*path, f.name), f"{env_name}_", out)
        else:
            key = SettingKey((*path, f.name), value, env_name)
            out[key.dotted] = key


def resolve_key(text: str) -> SettingKey:
    """The setting named by ``logging.level``, ``api.url`` or ``SLUICE_LOGGING_LEVEL``.

    Raises:
        CliError: no such setting, or one that cannot live in the config file.
    """
    keys = setting_keys()
    name = text.strip()
    by_env = {k.env_name: k for k in keys.values()}
    dotted = name.lower().replace("-", "_")
    key = by_env.get(name.upper()) or keys.get(ALIASES.get(dotted, dotted))
    if key is None:
        raise CliError(f"unknown setting {text!r}; known settings: {', '.join(keys)}")
    if key.dotted == "home":
        raise CliError("home is chosen with the SLUICE_HOME environment variable, not config")
    return key


def coerce_value(key: SettingKey, raw: str) -> Any:
    """``raw`` as the type of the setting's default (so TOML stores 3, not "3")."""
    default = key.default
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return lowered in _TRUE
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        kind = type(default).__name__
        raise CliError(f"invalid value {raw!r} for {key.dotted} ({kind}): {exc}") from None
    return raw


def read_config(path: Path) -> dict[str, Any]:
    """The config file as a dict (empty when it does not exist)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    if not path.exists():
        return {}
    try:
        values: dict[str, Any] = tomllib.loads(path.read_text())
        return values
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"Cannot read config file {path}: {exc}") from exc


def write_config(path: Path, data: Mapping[str, Any]) -> None:
    """Replace the config file atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps_toml(data))
    tmp.replace(path)


def get_in(data: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    """``(found, value)`` at ``path`` in nested tables."""
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def set_in(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise CliError(f"config file has {part!r} as a value, not a table")
        node = child
    node[path[-1]] = value


def remove_in(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    """Remove the value at ``path``, dropping tables left empty; True if it was there."""
    if len(path) == 1:
        return data.pop(path[0], None) is not None
    child = data.get(path[0])
    if not isinstance(child, dict) or not remove_in(child, path[1:]):
        return False
    if not child:
        del data[path[0]]
    return True


# -- TOML writing ---------------------------------------------------------------


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML text for nested tables of scalars and lists (what config.toml holds)."""
    lines: list[str] = []
    _write_table(lines, (), data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    values = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if path and (values or not tables):
        lines += ["", f"[{'.'.join(_key(p) for p in path)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in values]
    for k, v in tables:
        _write_table(lines, (*path, k), v)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise CliError(f"cannot write a value of type {type(value).__name__} to TOML")


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\b": "\\b",
    "\f": "\\f",
}


def _string(text: str) -> str:
    """A TOML basic string; control characters (not allowed raw) become ``\\uXXXX``."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
