"""Pure ASGI middleware: cross-site protection, API-key auth and the body size limit.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``) so a request body is
streamed through untouched and counted as it goes, and a refused request is
answered before any of it is read.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from sluice.server.served_hosts import ServedHosts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: largest request body the API accepts (docs/api.md)
MAX_BODY_BYTES = 16 * 1024 * 1024


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Any = ()) -> None:
    """Send a whole JSON response."""
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit.

    An ``HTTPException`` because the app reads bodies inside its own error
    handling, which turns any other exception from ``receive`` into a 400;
    this one it re-raises and answers with 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large (at most {limit} bytes)")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413.

    A declared ``Content-Length`` over the limit is refused before reading;
    a body sent without one (chunked) is counted while the app reads it, and
    the read fails once it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # pragma: no cover - an app answering before reading its body
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_json(
            send, 413, {"detail": f"Request body too large (at most {self.limit} bytes)"}
        )


class ApiKeyAuth:
    """With a key set, every ``/api`` request but the health check needs ``Bearer <key>``."""

    def __init__(self, app: ASGIApp, api_key: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self._expected = f"Bearer {api_key}".encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and (path == "/api" or path.startswith("/api/"))
            and path not in self.open_paths
        ):
            given = _header(scope, b"authorization") or ""
            # Constant time: the comparison must not tell how much of a guess was right.
            if not hmac.compare_digest(given.encode("latin-1"), self._expected):
                await send_json(
                    send,
                    401,
                    {"detail": "Missing or wrong API key (send 'Authorization: Bearer <key>')"},
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await self.app(scope, receive, send)


#: methods that change nothing (every route answering them only reads)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: what a browser says of a request from a page of another origin
_CROSS_SITE_FETCHES = frozenset({"cross-site", "same-site"})


class CrossSiteGuard:
    """Refuse what another site's page can make a browser send.

    - Every request: a ``Host`` this server is not reached by (DNS
      rebinding: see :mod:`sluice.server.served_hosts`) is a 400.
    - Requests that change state (any method but GET, HEAD, OPTIONS): an
      ``Origin`` that is not this server's, or ``Sec-Fetch-Site`` saying
      cross-site, is a 403; a body that is not JSON (or a ``Content-Type``
      other than JSON, body or not) is a 415. A page of another site can
      send forms and ``text/plain`` without asking; a JSON body it can only
      send after a CORS preflight, which this server never grants.

    Clients that are not browsers (the CLI, workers, ``curl``) send no
    ``Origin`` and pass, as does the UI, whose requests are same-origin JSON.
    """

    def __init__(self, app: ASGIApp, hosts: ServedHosts) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self._refusal(scope)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                status, detail = refusal
                await send_json(send, status, {"detail": detail})
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        host = _header(scope, b"host")
        if host is not None and not self.hosts.allows_host(host):
            return 400, (
                f"Host {_shown(host)} is not a name this server is reached by (DNS rebinding, "
                "or a name it was not told about: add it to SLUICE_SERVER_ALLOWED_HOSTS)"
            )
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return None
        origin = _header(scope, b"origin")
        if origin is not None and not self.hosts.allows_origin(origin, host):
            return 403, (
                f"Cross-site request refused: Origin {_shown(origin)} is not this server "
                "(a page of another site cannot change anything here; a reverse proxy's "
                "name goes in SLUICE_SERVER_ALLOWED_HOSTS)"
            )
        if (_header(scope, b"sec-fetch-site") or "").lower() in _CROSS_SITE_FETCHES:
            return 403, "Cross-site request refused (Sec-Fetch-Site: cross-site)"
        content_type = _header(scope, b"content-type")
        if content_type is not None:
            if not is_json_type(content_type):
                return 415, (
                    f"Content-Type {_shown(content_type)} refused: requests that change "
                    "state send application/json"
                )
        elif _has_body(scope):
            return 415, "A request body needs Content-Type: application/json"
        return None


def is_json_type(content_type: str) -> bool:
    """True for ``application/json`` (parameters allowed) and ``application/*+json``."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


def _shown(text: str) -> str:
    """A header value quoted for an answer (cut, and only printable ASCII)."""
    cut = text if len(text) <= 200 else text[:200] + "..."
    return repr(cut.encode("ascii", "backslashreplace").decode("ascii"))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
