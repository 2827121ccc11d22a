"""A real HTTP(S) server standing in for QRadar's HTTP Receiver: records POST bodies, answers from a script."""

from __future__ import annotations

import ssl
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class ReceivedPost:
    """One POST as the server saw it."""

    status: int
    body: bytes
    content_type: str


class HttpsReceiver:
    """
    Serve on a free loopback port in a background thread.

    :param cert: server certificate path; ``None`` serves plain HTTP.
    :param key: server key path.
    :param client_ca: when set, a client certificate signed by this CA is required (HTTPS + mTLS).
    :param responses: statuses for the next POSTs in order (e.g. ``[503, 200]``); 200 once exhausted.
    :param max_body_bytes: bodies larger than this are answered 413 (and not accepted).
    """

    def __init__(
        self,
        cert: Path | None = None,
        key: Path | None = None,
        *,
        client_ca: Path | None = None,
        responses: list[int] | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.responses: deque[int] = deque(responses or [])
        self.max_body_bytes = max_body_bytes
        self.posts: list[ReceivedPost] = []
        self.heads = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL with a trailing slash."""
        assert self._server is not None, "receiver not started"
        scheme = "https" if self.cert else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def port(self) -> int:
        """The listening port."""
        assert self._server is not None, "receiver not started"
        return int(self._server.server_address[1])

    def accepted_lines(self) -> list[str]:
        """Lines of every POST answered 2xx, in arrival order."""
        with self._lock:
            bodies = [post.body for post in self.posts if 200 <= post.status < 300]
        return [line for body in bodies for line in body.decode("utf-8").split("\n") if line]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: tests assert on recorded posts instead."""

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                with receiver._lock:
                    receiver.heads += 1
                self._answer(200)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    if receiver.max_body_bytes is not None and len(body) > receiver.max_body_bytes:
                        status = 413
                    else:
                        status = receiver.responses.popleft() if receiver.responses else 200
                    receiver.posts.append(ReceivedPost(status, body, self.headers.get("Content-Type", "")))
                self._answer(status)

        return Handler

    def start(self) -> HttpsReceiver:
        """Bind a free port and serve in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        if self.cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
            if self.client_ca:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(cafile=str(self.client_ca))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="https-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> HttpsReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
