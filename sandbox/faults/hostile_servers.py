"""Small misbehaving loopback servers: what a hostile or broken Atlassian API or QRadar receiver does.

- :class:`HostileApi`: an HTTP/1.1 server whose answers are scripted per request (redirects, echoed
  Authorization headers, gzip bombs, huge bodies, trickled headers or bodies), optionally in front of the real
  simulator (:attr:`HostileApi.upstream`): requests not scripted are forwarded to it, so a whole window can be
  delivered with one hostile answer in the middle.
- :class:`StallingReceiver`: a syslog TCP receiver that accepts connections but does not read them until
  :meth:`StallingReceiver.heal` is called; it then resets the stalled connections (their unread data is lost, as
  when a hung receiver is restarted) and from then on reads every connection to its end and closes it (a
  receipt, as syslog-ng gives).
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import socketserver
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit


@dataclass
class Request:
    """One request as the hostile server saw it."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


#: A scripted answer: writes the whole response to the socket (it may sleep, trickle or reset).
Behaviour = Callable[[Request, socket.socket], None]


def send_response(
    sock: socket.socket, status: int, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = ""
) -> None:
    """Write a complete HTTP/1.1 response and mark the connection for closing."""
    head = [f"HTTP/1.1 {status} {reason or http.client.responses.get(status, 'Status')}"]
    all_headers = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
    head += [f"{name}: {value}" for name, value in all_headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def json_answer(status: int, payload: object, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer ``status`` with a JSON body."""

    def behave(_request: Request, sock: socket.socket) -> None:
        send_response(
            sock, status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    return behave


def redirect(location: str, status: int = 302) -> Behaviour:
    """Answer a redirect to ``location``."""

    def behave(_request: Request, sock: socket.socket) -> None:
        send_response(sock, status, b"", {"Location": location})

    return behave


def echo_authorization(status: int) -> Behaviour:
    """Answer ``status`` with an Atlassian-shaped error that quotes the Authorization header in every form.

    The body echoes it raw, URL-encoded and base64-encoded, and the reason phrase carries it too.
    """

    def behave(request: Request, sock: socket.socket) -> None:
        import base64
        from urllib.parse import quote

        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ")
        encoded = base64.b64encode(key.encode()).decode()
        detail = (
            f"bad credentials {header!r} raw={key} url={quote(key, safe='')} b64={encoded}"
            f" header-b64={base64.b64encode(header.encode()).decode()}"
        )
        body = {"errors": [{"status": str(status), "code": f"ADMIN-{status}-1", "title": header, "detail": detail}]}
        send_response(
            sock,
            status,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "X-Echo": key},
            reason=f"Denied {key}",
        )

    return behave


@cache
def gzip_bomb(decoded_bytes: int) -> bytes:
    """Gzip data that decodes to ``decoded_bytes`` spaces (valid JSON whitespace), built in 1 MiB steps."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    parts = []
    for _ in range(decoded_bytes // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(b" " * (decoded_bytes % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_answer(payload: bytes, *, already_compressed: bool = False) -> Behaviour:
    """Answer 200 with a gzip-encoded body (``payload`` compressed now, or given compressed)."""

    def behave(_request: Request, sock: socket.socket) -> None:
        body = payload if already_compressed else gzip.compress(payload)
        send_response(sock, 200, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"})

    return behave


def huge_body(size: int, *, declared: bool = True) -> Behaviour:
    """Answer 200 with a ``size``-byte JSON document (a valid object padded with whitespace), streamed.

    :param declared: send ``Content-Length``; without it the body simply runs until the connection closes.
    """

    def behave(_request: Request, sock: socket.socket) -> None:
        length = f"Content-Length: {size}\r\n" if declared else ""
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
        sock.sendall(head.encode())
        sock.sendall(b'{"data":[]')
        block = b" " * (1 << 20)
        remaining = size - len(b'{"data":[]') - 1
        with_errors_ignored(lambda: _send_repeated(sock, block, remaining))
        with_errors_ignored(lambda: sock.sendall(b"}"))

    return behave


def _send_repeated(sock: socket.socket, block: bytes, total: int) -> None:
    while total > 0:
        piece = block[: min(len(block), total)]
        sock.sendall(piece)
        total -= len(piece)


def with_errors_ignored(action: Callable[[], None]) -> None:
    """Run ``action``; a client that hung up early is expected here."""
    try:
        action()
    except OSError:
        pass


def trickle(where: str, interval: float, stop: threading.Event) -> Behaviour:
    """Send a valid answer one byte every ``interval`` seconds, in the ``headers`` or in the ``body``.

    The answer would take minutes; ``stop`` ends it early when the test is done.
    """
    body = json.dumps({"data": [], "meta": {"next": None}}).encode() + b" " * 200

    def behave(_request: Request, sock: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        slow, fast = (head, b"") if where == "headers" else (b"", head)
        try:
            if fast:
                sock.sendall(fast)
            for byte in slow + (body if where == "body" else b""):
                if stop.wait(interval):
                    return
                sock.sendall(bytes([byte]))
            if where == "headers":
                sock.sendall(body)
        except OSError:
            return

    return behave


class HostileApi:
    """A loopback HTTP server answering each request with a scripted :data:`Behaviour`.

    :param script: ``{request number (1-based): behaviour}``; other requests get ``default``.
    :param default: the behaviour of unscripted requests; without one they are forwarded to ``upstream``.
    :param upstream: base URL of a real server (the simulator) to forward unscripted requests to.
    """

    def __init__(
        self,
        script: dict[int, Behaviour] | None = None,
        *,
        default: Behaviour | None = None,
        upstream: str | None = None,
    ) -> None:
        self.script = dict(script or {})
        self.default = default
        self.upstream = upstream
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _handle(self, sock: socket.socket) -> None:
        request = _read_request(sock)
        if request is None:
            return
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
        behaviour = self.script.get(number) or self.default
        try:
            if behaviour is not None:
                behaviour(request, sock)
            elif self.upstream:
                self._forward(request, sock)
            else:
                send_response(sock, 404, b"{}")
        except OSError:
            pass

    def _forward(self, request: Request, sock: socket.socket) -> None:
        upstream = urlsplit(self.upstream or "")
        connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port or 80, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in ("host", "accept-encoding", "connection")}
            connection.request(request.method, request.target, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            passed = {
                k: v
                for k, v in answer.getheaders()
                if k.lower() not in ("content-length", "connection", "transfer-encoding")
            }
        finally:
            connection.close()
        send_response(sock, answer.status, body, passed, reason=answer.reason)


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    request_line, *lines = head.split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


@dataclass
class StallingReceiver:
    """A syslog TCP receiver that accepts but does not read until :meth:`heal`; then a well-behaved one.

    Well-behaved means: read each connection to its end, then close it (the receipt the sender waits for).
    """

    received: list[bytes] = field(default_factory=list)
    stalled_connections: int = 0

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._healthy = threading.Event()
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._healthy.is_set():
                thread = threading.Thread(target=self._read_to_end, args=(conn,), daemon=True)
                thread.start()
                self._threads.append(thread)
            else:
                with self._lock:
                    self._held.append(conn)
                    self.stalled_connections += 1

    def _read_to_end(self, conn: socket.socket) -> None:
        data = bytearray()
        conn.settimeout(30)
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except OSError:
            pass
        finally:
            conn.close()
        with self._lock:
            self.received.append(bytes(data))

    def heal(self) -> None:
        """Reset every stalled connection (its unread data is lost) and read every new connection from now on."""
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        self._healthy.set()

    def lines(self, settle: float = 0.5) -> list[str]:
        """Every line read so far (after waiting ``settle`` seconds for readers to finish)."""
        time.sleep(settle)
        with self._lock:
            return [line for data in self.received for line in data.decode("utf-8", "replace").splitlines() if line]

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self._server.close()
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        for thread in self._threads:
            thread.join(5)
