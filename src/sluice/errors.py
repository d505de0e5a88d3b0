"""Every exception Sluice raises, in one place.

The tree::

    BaseException
    └── EngineSignal                 control flow of the engine; user ``except Exception``
        ├── CancelRun                cannot swallow these
        ├── PauseRun
        └── AbortRun
            └── Superseded           another process took the run over: stop, record nothing
    Exception
    └── SluiceError                  base of every error Sluice raises on purpose
        ├── ConfigurationError       bad setting, bad config file
        ├── InvalidInputError        a value given to an operation is refused (a blank name ...)
        ├── ScheduleError            a cron/interval/rrule schedule or its timezone is invalid
        ├── StoreError               the store cannot be opened or written
        │   ├── StoreCorruptError    the database file is not a usable Sluice store
        │   ├── ServerUnavailableError  the API server is unreachable or failing (retryable)
        │   ├── RequestRefusedError  the API server refused a request (resending cannot help)
        │   └── RunNotStarted        it failed before an existing run started: nothing ran
        ├── NotFoundError            unknown flow, flow run, task run, deployment ...
        │   └── AmbiguousIdError     an id prefix or flow name matches several objects
        ├── ConflictError            the request clashes with what exists (a name taken ...)
        │   └── TransitionRefused    an orchestration rule refused an asked-for state change
        ├── EntrypointError          ``path/file.py:flow`` cannot be loaded
        ├── NotResumableError        a resume was asked of a run that cannot continue
        ├── CannotExecute            a worker was handed a run it cannot execute at all
        ├── CodeUnavailable          a deployment's code cannot be loaded (the run fails)
        ├── BatchTooLarge            an ingest request holds more records than allowed
        ├── InvalidRecords           records hold values the store cannot keep
        ├── ParameterValidationError parameters rejected before a run starts
        ├── SerializationError       a result or parameter cannot be serialized
        ├── ResultIntegrityError     a stored result is not its record's (moved, edited)
        ├── ResultMissingError       a stored result cannot be found or read
        ├── TaskRunError             base of failures reported by a task run
        │   ├── UpstreamTaskError    an upstream future did not complete
        │   └── TaskTimeoutError     the task ran past ``timeout_seconds``
        ├── FlowTimeoutError         the flow ran past ``timeout_seconds``
        ├── MissingContextError      a run-scoped API was used outside any run
        ├── NotAwaitedError          a run_deployment call made in async code was not awaited
        ├── CrashedRunError          the run ended because the engine or process broke
        ├── FailedRunError           the run failed and no exception of its own says why
        ├── CancelledRunError        the run was cancelled (asked for its result)
        └── UnfinishedRunError       the run is not final (Pending, NotReady ...): no result yet

``TaskTimeoutError`` and ``FlowTimeoutError`` also derive from the built-in
``TimeoutError`` so user code written for the standard library still catches them;
``ScheduleError`` derives from ``ValueError`` for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EngineSignal(BaseException):
    """Base of engine control signals. Derives from BaseException on purpose:
    a user's ``except Exception`` must not turn a cancellation into a success."""


class CancelRun(EngineSignal):
    """Raised inside a run to stop it; the run ends Cancelled."""


class PauseRun(EngineSignal):
    """Raised inside a run to pause it."""


class AbortRun(EngineSignal):
    """Raised to end a run immediately without changing its recorded state."""


class Superseded(AbortRun):
    """Raised in a run whose attempt was superseded: another process executes the run
    now (it was presumed dead and resumed), and the store refuses this one's writes.
    The run stops and records nothing further.

    Attributes:
        flow_run_id: the run taken over.
        attempt: the attempt this process held.
    """

    def __init__(self, flow_run_id: str, attempt: int) -> None:
        super().__init__(
            f"Flow run {flow_run_id} was taken over by a later attempt than this process's "
            f"({attempt}); this process stops without recording anything further"
        )
        self.flow_run_id = flow_run_id
        self.attempt = attempt

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.flow_run_id, self.attempt))


class SluiceError(Exception):
    """Base class of every error Sluice raises on purpose."""


class ConfigurationError(SluiceError):
    """A setting or the config file holds a value Sluice cannot use."""


class InvalidInputError(SluiceError, ValueError):
    """A value given to an operation is refused (a blank or malformed name, a
    limit of the wrong type, malformed job variables); nothing was changed.

    Also a ``ValueError``: the deployment layer always refused bad input with one,
    and the server answers it with a 422.

    Attributes:
        field: the argument refused, when one is (its message then starts with
            ``<field>: ``); the server's 422 lists it under ``fields``.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.field))


class ScheduleError(SluiceError, ValueError):
    """A schedule (cron, interval, rrule) or its timezone is invalid.

    Also a ``ValueError``, so code that validates user input generically catches it.
    """


class StoreError(SluiceError):
    """The store could not be opened, read or written."""


class StoreCorruptError(StoreError):
    """The database file exists but is not a usable Sluice store."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"The Sluice database at {path} cannot be used: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.reason))


class NotFoundError(SluiceError):
    """An object looked up by name or id does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.kind, self.key))


class AmbiguousIdError(NotFoundError):
    """An id prefix (or a dash/underscore flow name) matches more than one object.

    Attributes:
        candidates: some of the matching ids or names, to show the user.
    """

    def __init__(self, kind: str, key: str, candidates: Sequence[str]) -> None:
        super().__init__(kind, key)
        self.candidates = list(candidates)
        shown = ", ".join(self.candidates)
        self.args = (f"{kind} {key!r} is ambiguous: it matches {shown}; give more characters",)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.kind, self.key, self.candidates))


class ConflictError(SluiceError):
    """The request clashes with the current state of things: a name already
    taken, a pool still used by deployments, a run that cannot be resumed.

    Attributes:
        kind: what kind of object it concerns ("work pool", "flow run" ...).
        key: its name or id.
        reason: why the request cannot be done, as a sentence.
    """

    def __init__(self, kind: str, key: str, reason: str) -> None:
        self.kind = kind
        self.key = key
        self.reason = reason
        super().__init__(f"{kind} {key!r}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.kind, self.key, self.reason))


class ParameterValidationError(SluiceError):
    """Parameters of a flow call do not match its signature.

    Attributes:
        flow_name: the flow whose parameters were rejected.
        errors: one ``(field, message)`` pair per bad field.
    """

    def __init__(self, flow_name: str, errors: Sequence[tuple[str, str]]) -> None:
        self.flow_name = flow_name
        # Pairs, also when they arrive as JSON lists (rebuilt from a server's answer).
        self.errors = [(str(field), str(message)) for field, message in errors]
        details = "; ".join(f"{field}: {message}" for field, message in self.errors)
        super().__init__(f"Invalid parameters for flow {flow_name!r}: {details}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.flow_name, self.errors))


class SerializationError(SluiceError):
    """A value could not be serialized where it must be (results, parameters)."""

    def __init__(self, what: str, value_type: str, reason: str) -> None:
        self.what = what
        self.value_type = value_type
        self.reason = reason
        super().__init__(f"Cannot serialize {what} of type {value_type}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.what, self.value_type, self.reason))


class ResultIntegrityError(SluiceError):
    """A stored result is not its record's (copied from another record, edited, a file
    moved from another storage key, signed with another key or by an earlier Sluice);
    it was not deserialized. ``where`` names the record (or the file)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"Refusing to load {where}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.where, self.reason))


class ResultMissingError(SluiceError):
    """A persisted result could not be read back (file removed, storage unreachable)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"The result at {where} cannot be read: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.where, self.reason))


class TaskRunError(SluiceError):
    """Base of failures that a task run reports rather than its user code."""


class UpstreamTaskError(TaskRunError):
    """An upstream task this one depends on did not complete."""


class TaskTimeoutError(TaskRunError, TimeoutError):
    """A task ran longer than its ``timeout_seconds``."""


class FlowTimeoutError(SluiceError, TimeoutError):
    """A flow ran longer than its ``timeout_seconds``."""


class MissingContextError(SluiceError):
    """A run-scoped API (like ``get_run_logger``) was used outside any flow or task run."""


class NotAwaitedError(SluiceError, RuntimeError):
    """A ``run_deployment`` call made in async code was used before it was awaited.

    In async code the call creates and waits for the run when awaited (so the
    event loop is never blocked); until then there is no run to describe.
    """


class CrashedRunError(SluiceError):
    """The run ended because the engine or its process broke, not the user's code."""


class FailedRunError(SluiceError):
    """A failed run's result was asked for, and no exception of its own explains the
    failure (a ``Failed(message=...)`` state returned by user code): the message does."""


class CancelledRunError(SluiceError):
    """A cancelled run's result was asked for."""


class UnfinishedRunError(SluiceError):
    """A run's result was asked for before it reached a final state (it is Pending,
    for instance ``NotReady`` because an upstream task did not complete)."""


class RunNotStarted(StoreError):
    """The store failed while an existing flow run was being started again (its
    journal read, its attempt taken), before any of its code ran: a worker hands
    the run back to the queue."""


class ServerUnavailableError(StoreError):
    """The server could not be reached or failed (5xx); the call may be retried."""


class RequestRefusedError(StoreError):
    """The server refused the request itself (a 4xx other than 401/403/404/409 lookups):
    sending it again cannot succeed.

    Attributes:
        status: the HTTP status code.
        detail: the server's explanation.
    """

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        #: the error the server said it refused the request with (its type and
        #: fields), rebuilt; None when the answer names none
        self.refusal: SluiceError | None = None

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.status, self.detail))


class TransitionRefused(ConflictError):
    """An orchestration rule refused a state change (in client mode too: the
    server's refusal carries the rule).

    Attributes:
        run_id: the flow run.
        rule: the name of the rule that refused.
        reason: why, in a sentence.
    """

    def __init__(self, run_id: str, rule: str, reason: str) -> None:
        super().__init__("flow run", run_id, reason)
        self.run_id = run_id
        self.rule = rule
        self.args = (f"State change of flow run {run_id} refused by {rule}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.run_id, self.rule, self.reason))


class EntrypointError(SluiceError):
    """An entrypoint cannot be loaded: bad syntax, missing file or attribute, not a flow."""


class NotResumableError(SluiceError):
    """The flow run is not in a state (or shape) a resume can continue."""


class CannotExecute(SluiceError):
    """A run handed to a worker cannot be executed at all (unknown, or not Scheduled/Pending)."""


class CodeUnavailable(SluiceError):
    """A deployment's code cannot be loaded: the run ends Failed with this message."""


class BatchTooLarge(SluiceError):
    """An ingest batch holds more records than one request may."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"The batch holds {count} records; at most {limit} per request")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.count, self.limit))


class InvalidRecords(SluiceError):
    """Values the store cannot hold; ``errors`` in FastAPI's ``{"loc", "msg", "type"}`` shape."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} invalid value(s), first: {errors[0]['msg']}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.errors,))
