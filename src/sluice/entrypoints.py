"""Loading user code named by an entrypoint: ``path/to/file.py:flow_name``.

Used by ``sluice run`` and ``sluice deploy`` (and by workers, which receive the
entrypoint stored with a deployment). ``package.module:flow_name`` also works
for code that is importable rather than a file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from sluice.errors import EntrypointError
from sluice.flows import Flow


def split_entrypoint(entrypoint: str) -> tuple[str, str]:
    """``("path/to/file.py", "attr")`` from ``path/to/file.py:attr``.

    Splits on the last colon so Windows paths (``C:\\flows\\etl.py:etl``) work.
    """
    location, sep, attr = entrypoint.rpartition(":")
    if not sep or not location or not attr:
        raise EntrypointError(
            f"invalid entrypoint {entrypoint!r}; expected path/to/file.py:flow_function"
        )
    return location, attr


def load_object(entrypoint: str) -> Any:
    """The object an entrypoint names (any object, not only flows)."""
    location, attr = split_entrypoint(entrypoint)
    module = _load_module(location)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EntrypointError(f"{location} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """The flow an entrypoint names.

    Raises:
        EntrypointError: the file or module is missing or fails to import, the
            attribute is missing, or it is not a flow (e.g. a plain function).
    """
    obj = load_object(entrypoint)
    if not isinstance(obj, Flow):
        kind = "a function" if callable(obj) else f"a {type(obj).__name__}"
        raise EntrypointError(
            f"{entrypoint!r} is {kind}, not a flow; decorate it with @flow to run it"
        )
    return obj


def _load_module(location: str) -> ModuleType:
    if location.endswith(".py") or "/" in location or "\\" in location:
        return _load_file(Path(location))
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as exc:
        if exc.name and location.startswith(exc.name):
            raise EntrypointError(f"no file or module named {location!r}") from exc
        raise _import_error(location, exc) from exc
    except Exception as exc:
        raise _import_error(location, exc) from exc


def _load_file(path: Path) -> ModuleType:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise EntrypointError(f"file {str(path)!r} not found")
    # The file's folder goes on sys.path so its sibling imports work, as when
    # the file is run with ``python file.py``.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = _module_name(path)
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before executing: dataclasses, pickling and typing look the
    # module up by name while it runs.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise _import_error(str(path), exc) from exc
    return module


def _module_name(path: Path) -> str:
    """The file's stem when free, so process-pool workers can import it by that name;
    otherwise a unique name that cannot shadow an existing module."""
    stem = path.stem
    existing = sys.modules.get(stem)
    same_file = existing is not None and getattr(existing, "__file__", None) == str(path)
    free = existing is None and stem not in sys.stdlib_module_names
    if stem.isidentifier() and (free or same_file):
        return stem
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return f"__sluice_entrypoint_{digest}__"


def _import_error(location: str, exc: BaseException) -> EntrypointError:
    return EntrypointError(f"failed to import {location}: {type(exc).__name__}: {exc}")
