"""HTTP server of the Atlassian audit-log simulator (stdlib ``http.server``)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.atlassian_sim.config import Faults, SimulatorConfig
from sandbox.atlassian_sim.generator import ids_of
from sandbox.atlassian_sim.index import IndexEntry, to_epoch_us
from sandbox.atlassian_sim.protocol import Response
from sandbox.atlassian_sim.state import RequestRecord, SimulatorState


class _Handler(BaseHTTPRequestHandler):
    server: _SimHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "atlassian-sim/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        arrived = time.time()
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if split.path.startswith("/_sim/"):
            response = state.handle_admin(method, split.path, params, body)
        else:
            response = state.handle_api(method, split.path, split.query, params, self.headers.get("Authorization"))
            state.record(RequestRecord(method, split.path, params, response.status, arrived))
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not response.reset_mid_body:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: len(response.body) // 2])
        self.wfile.flush()
        # SO_LINGER 0 turns close() into a TCP RST: the client sees a reset, not a clean EOF.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client resets and our own mid-body resets are expected; stay quiet."""


class Simulator:
    """
    A running simulator: the HTTP server plus the test-facing view of its data.

    Binds at construction (so :attr:`base_url` is known), serves after :meth:`start`. Use as a context manager
    or call :meth:`stop`.

    :param config: what to generate and how to behave.
    :param host: interface to bind; ``0.0.0.0`` for containers.
    :param port: TCP port; 0 picks a free one.
    """

    def __init__(self, config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.state = SimulatorState(config)
        self._server = _SimHTTPServer((host, port), self.state)
        bound_host, bound_port = str(self._server.server_address[0]), int(self._server.server_address[1])
        shown_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host
        self.base_url = f"http://{shown_host}:{bound_port}"
        if not self.state.links_base:
            self.state.links_base = self.base_url
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._server.server_address[1])

    @property
    def faults(self) -> Faults:
        """The live fault switches."""
        return self.state.faults

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the API requests answered so far, oldest first."""
        return self.state.requests()

    @property
    def event_count(self) -> int:
        """Number of events held (generated plus explicit), before retention and visibility."""
        return len(self.state.store)

    def start(self) -> Simulator:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="atlassian-sim", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another one."""
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this simulator (``/admin/v1/...`` or ``/_sim/...``)."""
        return f"{self.base_url}{path}"

    def ground_truth(self, start: datetime, end: datetime, clock: str | None = None) -> list[str]:
        """
        Ids the stream returns for ``[start, end)`` right now: filter-clock value (ms) in the window.

        Respects retention and visibility at call time; sorted by ``(processedAt, id)``.

        :param clock: ``time`` or ``processed``; default the config's ``filter_clock``.
        """
        return ids_of(self._between(start, end, clock))

    def events_between(self, start: datetime, end: datetime, clock: str | None = None) -> list[dict[str, Any]]:
        """The events of :meth:`ground_truth` as full stream-form dicts (with ``processedAt``)."""
        return [self.state.store.event(entry) for entry in self._between(start, end, clock)]

    def event(self, event_id: str) -> dict[str, Any]:
        """
        One event as a stream-form dict, whether or not the API would serve it now.

        :raises KeyError: for an unknown id.
        """
        entry = self.state.store.entry(event_id)
        if entry is None:
            raise KeyError(f"no event with id {event_id!r} in this simulator")
        return self.state.store.event(entry)

    def reset_counters(self) -> None:
        """Forget the request log and every rate-limit window."""
        self.state.reset_counters()

    def prebuild_stream(self, start: datetime, end: datetime, limit: int) -> tuple[int, int]:
        """
        Render the ``/events-stream`` pages of ``[start, end)`` now (needs ``prebuilt_pages=True``).

        Matches a client that sends ``from`` = start in ms, ``to`` = end in ms minus 1 and ``limit``, as
        :class:`AtlassianAuditLogHook` does. Returns (pages, events) rendered.
        """
        start_ms, end_ms = to_epoch_us(start) // 1000, -(-to_epoch_us(end) // 1000)
        return self.state.prebuild_stream(start_ms, end_ms - 1, limit)

    def _between(self, start: datetime, end: datetime, clock: str | None = None) -> list[IndexEntry]:
        start_ms, end_ms = to_epoch_us(start) // 1000, -(-to_epoch_us(end) // 1000)
        return self.state.store.between(start_ms, end_ms, int(time.time() * 1000), clock)


def run_in_thread(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> Simulator:
    """
    Start a simulator serving in a daemon thread; use it as ``with run_in_thread(cfg) as sim:``.

    :param config: what to generate and how to behave.
    :param host: interface to bind (default loopback).
    :param port: TCP port (default: a free one).
    """
    return Simulator(config, host, port).start()
