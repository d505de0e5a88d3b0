"""HTTP calls to a Sluice server: one httpx client, error mapping, retries.

Status codes become Sluice errors (``docs/api.md``): 401/403 is a
:class:`~sluice.errors.ConfigurationError` naming the URL. Other refusals raise
:class:`RequestRefusedError`, carrying the error the server named in its
answer, rebuilt (:mod:`sluice.operations.refusals`). A server that cannot be
reached, drops the connection, or answers 5xx raises
:class:`ServerUnavailableError`, which callers retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from sluice.errors import ConfigurationError, RequestRefusedError, ServerUnavailableError
from sluice.operations.refusals import rebuilt

T = TypeVar("T")

#: longest wait between two attempts while the server is unreachable, in seconds
MAX_BACKOFF = 2.0
#: seconds a read keeps retrying while the server is unreachable (at most the write timeout)
READ_RETRY_TIMEOUT = 10.0

Params = Mapping[str, str | int | Sequence[str]]


def backoff_delays(first: float = 0.05) -> Callable[[], float]:
    """A function returning successive retry delays: doubling from ``first``, capped."""
    delay = first / 2

    def next_delay() -> float:
        nonlocal delay
        delay = min(delay * 2, MAX_BACKOFF)
        return delay

    return next_delay


class Transport:
    """Requests to the server at ``url`` (its root, or its ``/api`` URL).

    Thread-safe: the writer thread and reading threads share one connection pool.
    """

    def __init__(self, url: str, api_key: str = "", *, timeout: float = 30.0) -> None:
        base = url.rstrip("/")
        if base.endswith("/api"):
            base = base[: -len("/api")]
        self.url = base
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """One request; the response if it is a success, else the matching error.

        Raises:
            ServerUnavailableError: no answer, a dropped connection, or a 5xx.
            ConfigurationError: 401 or 403 (the API key).
            RequestRefusedError: any other refusal (the server's detail, and the
                error it named, included).
        """
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._client.request(
                method, path, params=params, content=content, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"The Sluice server at {self.url} is unreachable ({type(exc).__name__}: {exc})"
            ) from exc
        if response.is_success:
            return response
        raise self._error(response, method, path)

    def _error(self, response: httpx.Response, method: str, path: str) -> Exception:
        status, detail = response.status_code, _detail(response)
        where = f"{method} {self.url}{path}"
        if status in (401, 403):
            return ConfigurationError(
                f"The Sluice server at {self.url} refused the request ({status}: {detail}); "
                "check SLUICE_API_KEY (it must match the server's key)"
            )
        if status >= 500:
            return ServerUnavailableError(
                f"The Sluice server failed on {where} ({status}: {detail})"
            )
        if status in (408, 429):
            return ServerUnavailableError(
                f"The Sluice server is busy: {where} ({status}: {detail})"
            )
        refused = RequestRefusedError(
            f"The Sluice server refused {where} ({status}: {detail})", status, detail
        )
        refused.refusal = rebuilt(_body(response).get("error"))
        return refused


def with_retries(call: Callable[[], T], timeout: float) -> T:
    """``call()``, retried with backoff while it raises ServerUnavailableError, for up
    to ``timeout`` seconds; then the last error."""
    deadline = time.monotonic() + timeout
    delay = backoff_delays()
    while True:
        try:
            return call()
        except ServerUnavailableError:
            pause = delay()
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)


def _body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object ({} if it holds none)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else str(detail)[:500]
    return str(body)[:500]
