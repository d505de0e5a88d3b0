"""Operations: everything a store does on request, each one request type.

A request type is a frozen dataclass whose fields are the operation's
arguments and whose ``Operation[R]`` base says what it answers; its
docstring is the operation's documentation. Every store runs it with
``backend.execute(request)``:

- the embedded store (:class:`~sluice.backend.local.LocalBackend`) with the
  operation's one implementation (:mod:`sluice.store.implementations`), in
  one read or write transaction;
- the HTTP client (:class:`~sluice.backend.http.HttpBackend`) by sending it to
  a server as its entry in :mod:`sluice.operations.routes` says; the server's
  route for that entry runs the same implementation.

Refusals are the same errors everywhere (:mod:`sluice.operations.refusals`).
How to add an operation: docs/architecture.md.

Request types are imported from their area's module
(``from sluice.operations.runs import ReadFlowRun``); this package imports
neither, so a process that only records runs never builds them.
"""

from __future__ import annotations

from sluice.operations.base import Operation, result_type

__all__ = ["Operation", "result_type"]
