"""Job variables: how a worker should execute one run of a deployment.

``run_deployment(..., job_variables={...})`` stores them with the run (as
given, after the checks below); which ones take effect depends on the type of
the run's work pool. The only type today is ``process`` (a subprocess per run),
and of Prefect's process-pool variables two apply:

``env``
    a mapping of environment variable names to text, set in the run's
    subprocess on top of the worker's environment (a ``None`` value removes
    that variable instead).
``working_dir``
    the directory the run starts in and loads its code from, instead of the
    deployment's.

Any other name is kept with the run (visible in its record) and has no effect
on process pools. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sluice.errors import InvalidInputError

#: the variables a ``process`` pool applies
PROCESS_VARIABLES = ("env", "working_dir")


def check_job_variables(variables: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain copy of ``variables`` (``{}`` for None), checked.

    Raises:
        InvalidInputError: (a ValueError) not a mapping of names to JSON values, or a variable a
            process pool applies has the wrong shape; the message names it.
    """
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise InvalidInputError(f"job_variables must be a mapping, not {type(variables).__name__}")
    checked = dict(variables)
    for key in checked:
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"job_variables: names must be non-empty text, not {key!r}")
    try:
        json.dumps(checked, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"job_variables must hold JSON values only: {exc}") from None
    _check_env(checked.get("env"))
    folder = checked.get("working_dir")
    if folder is not None and (not isinstance(folder, str) or not folder):
        raise InvalidInputError(
            f"job_variables.working_dir must be a directory path, not {folder!r}"
        )
    return checked


def _check_env(env: Any) -> None:
    if env is None:
        return
    if not isinstance(env, Mapping):
        raise InvalidInputError(f"job_variables.env must be a mapping, not {type(env).__name__}")
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\x00" in name:
            raise InvalidInputError(
                f"job_variables.env: {name!r} is not an environment variable name"
            )
        if value is not None and (not isinstance(value, str) or "\x00" in value):
            raise InvalidInputError(
                f"job_variables.env[{name!r}] must be text (or null to unset), not {value!r}"
            )


def process_environment(base: Mapping[str, str], variables: Mapping[str, Any]) -> dict[str, str]:
    """The environment of a run's subprocess: ``base`` with the run's ``env`` applied."""
    env = dict(base)
    for name, value in (variables.get("env") or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def process_working_dir(default: str | None, variables: Mapping[str, Any]) -> str | None:
    """The directory a run's subprocess starts in: the run's ``working_dir``, else ``default``."""
    folder = variables.get("working_dir")
    return folder if isinstance(folder, str) and folder else default


def ignored_by_process_pools(variables: Mapping[str, Any]) -> list[str]:
    """The names in ``variables`` a process pool does not apply (sorted)."""
    return sorted(name for name in variables if name not in PROCESS_VARIABLES)
