"""What routes get injected: the server's backend and ingest writer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sluice.backend.local import LocalBackend
from sluice.server.ingest_writer import IngestWriter


def _backend(request: Request) -> LocalBackend:
    backend: LocalBackend = request.app.state.backend
    return backend


#: the backend over the server's database, opened at startup
BackendDep = Annotated[LocalBackend, Depends(_backend)]


def _ingest_writer(request: Request) -> IngestWriter:
    writer: IngestWriter = request.app.state.ingest_writer
    return writer


#: the writer of ingested batches, opened at startup
IngestWriterDep = Annotated[IngestWriter, Depends(_ingest_writer)]
