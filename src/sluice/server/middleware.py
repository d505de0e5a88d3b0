"""Pure ASGI middleware: API-key auth and the request body size limit.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``) so a request body is
streamed through untouched and counted as it goes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
