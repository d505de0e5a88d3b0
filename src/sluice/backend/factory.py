"""One backend per process per store: :func:`get_backend` and :func:`close_backends`.

With ``settings.api_url`` set (``SLUICE_API_URL``) the store is a Sluice
server and the backend is the HTTP client
(:class:`~sluice.backend.http.HttpBackend`); otherwise it is the embedded
database (:class:`~sluice.backend.local.LocalBackend`).

Everything in a process that records runs (the engine, loggers, the CLI)
shares one backend per server or database URL, so it shares one writer
thread and one connection pool. The cache is keyed by process id as well as URL: a forked
child never touches its parent's writer thread or connections (it gets its
own backend on first use; the parent's copies are simply dropped).

This module is imported by ``sluice`` itself, so it must not import
SQLAlchemy or httpx; each backend is imported on first use.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from sluice.backend.protocol import Backend
from sluice.errors import ConfigurationError, StoreError
from sluice.settings import Settings, load_settings

_lock = threading.Lock()
_backends: dict[tuple[int, str], Backend] = {}
_atexit_registered = False
#: a forked child's copies of its parent's backends, kept alive but unused
_orphaned: list[Backend] = []


def get_backend(settings: Settings | None = None) -> Backend:
    """The process's backend for ``settings`` (``None``: :func:`load_settings`).

    Client mode when ``settings.api_url`` is set: an
    :class:`~sluice.backend.http.HttpBackend` talking to that server (nothing
    is sent until the first flush or read). Otherwise the embedded
    :class:`~sluice.backend.local.LocalBackend`, opening (and if needed
    creating) the database. Created on first use, then shared: later calls
    with the same API URL, or without one the same database URL, return the
    same object, whatever their other settings. Thread-safe.

    Raises:
        StoreError: the database cannot be opened (StoreCorruptError if it is
            not a Sluice store).
        ConfigurationError: ``api_url`` is not an http(s) URL.
    """
    settings = settings or load_settings()
    key = (os.getpid(), _store_key(settings))
    backend = _backends.get(key)
    if backend is not None and not getattr(backend, "closed", False):
        return backend
    with _lock:
        backend = _backends.get(key)
        if backend is None or getattr(backend, "closed", False):
            backend = _open(settings)
            _backends[key] = backend
            _register_atexit()
    return backend


def _store_key(settings: Settings) -> str:
    return f"api:{settings.api_url}" if settings.api_url else settings.resolved_database_url


def _open(settings: Settings) -> Backend:
    if settings.api_url:
        try:
            from sluice.backend.http import HttpBackend
        except ImportError as exc:
            from sluice.distribution import install_command

            raise ConfigurationError(
                f"Client mode (SLUICE_API_URL={settings.api_url}) needs packages the plain "
                f"install includes; reinstall Sluice: {install_command()} ({exc})"
            ) from exc
        return HttpBackend(settings)
    from sluice.backend.local import LocalBackend

    return LocalBackend(settings)


def close_backends() -> None:
    """Flush and close every backend this process opened (tests, interpreter exit).

    Every backend is closed even if one fails.

    Raises:
        StoreError: the first failure, once all were closed.
    """
    pid = os.getpid()
    with _lock:
        mine = [key for key in _backends if key[0] == pid]
        backends = [_backends.pop(key) for key in mine]
    first_error: StoreError | None = None
    for backend in backends:
        try:
            backend.close()
        except StoreError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_close_at_exit)
        _atexit_registered = True


def _close_at_exit() -> None:
    try:
        close_backends()
    except StoreError as exc:
        # Nobody is left to catch it; say what was lost rather than nothing.
        print(f"sluice: {exc}", file=sys.stderr)


def _forget_parent_backends() -> None:
    # In a forked child the parent's backends have no writer thread, and their
    # SQLite connections must not be used (nor closed, which garbage
    # collection would do) by the child. Park them where nothing touches them.
    global _lock
    _lock = threading.Lock()
    _orphaned.extend(_backends.values())
    _backends.clear()


os.register_at_fork(after_in_child=_forget_parent_backends)
