"""What routes get injected: the server's backend."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sluice.backend.local import LocalBackend


def _backend(request: Request) -> LocalBackend:
    backend: LocalBackend = request.app.state.backend
    return backend


#: the backend over the server's database, opened at startup
BackendDep = Annotated[LocalBackend, Depends(_backend)]
