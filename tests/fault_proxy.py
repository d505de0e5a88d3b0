"""An HTTP proxy in front of a real server that loses answers on purpose.

It forwards each request to the server and relays the answer, except for the
next ``drop`` answers to a chosen path: those requests reach the server (which
commits them) and the proxy then closes the client's connection without a
word, as a server killed between committing and replying would.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class AnswerDroppingProxy:
    """Proxy to ``upstream`` on a free 127.0.0.1 port (see the module docstring)."""

    def __init__(self, upstream: str, path: str) -> None:
        target = urlsplit(upstream)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.path = path
        self.drop = 0
        #: requests to ``path`` forwarded, and answers dropped
        self.forwarded = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: tests read the counters instead

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    content = answer.read()
                finally:
                    upstream.close()
                if self.path.split("?")[0] == proxy.path and proxy._take_drop():
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

        return Handler

    def _take_drop(self) -> bool:
        with self._lock:
            self.forwarded += 1
            if self.drop <= 0:
                return False
            self.drop -= 1
            self.dropped += 1
            return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def answer_dropping_proxy(upstream: str, path: str) -> Iterator[AnswerDroppingProxy]:
    """A running :class:`AnswerDroppingProxy`, stopped on exit."""
    proxy = AnswerDroppingProxy(upstream, path)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
