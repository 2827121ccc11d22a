"""A small local syslog receiver for the demo: TCP on loopback, LF-framed, one received frame per file line.

The demo prefers a real syslog-ng when it is installed; this is the fallback that needs nothing but Python.
Run alone: ``python -m sandbox.receivers.line_receiver --port 5514 --output received.log``.
"""

from __future__ import annotations

import argparse
import socketserver
import threading
from pathlib import Path
from types import TracebackType


class _Handler(socketserver.StreamRequestHandler):
    server: _ReceiverServer

    def handle(self) -> None:
        for frame in self.rfile:
            self.server.append(frame)


class _ReceiverServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], output: Path) -> None:
        super().__init__(address, _Handler)
        self._lock = threading.Lock()
        self._output = open(output, "ab")

    def append(self, frame: bytes) -> None:
        if not frame.endswith(b"\n"):
            frame += b"\n"  # a frame cut by a closing peer still gets its own line
        with self._lock:
            self._output.write(frame)
            self._output.flush()

    def server_close(self) -> None:
        super().server_close()
        self._output.close()


class LineReceiver:
    """Serve an LF-framed TCP syslog receiver in a background thread, appending every frame to ``output``.

    :param output: file that gets one line per received frame.
    :param port: TCP port on 127.0.0.1; 0 picks a free one.
    """

    def __init__(self, output: Path, port: int = 0) -> None:
        self.output = output
        self._server = _ReceiverServer(("127.0.0.1", port), output)
        self._thread = threading.Thread(target=self._server.serve_forever, name="line-receiver", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def lines(self) -> list[str]:
        """Return the frames received so far, without their line ends."""
        return self.output.read_text(encoding="utf-8", errors="replace").splitlines()

    def __enter__(self) -> LineReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5514)
    parser.add_argument("--output", type=Path, default=Path("received.log"))
    args = parser.parse_args()
    with LineReceiver(args.output, args.port) as receiver:
        print(f"listening on 127.0.0.1:{receiver.port}, writing {args.output}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
