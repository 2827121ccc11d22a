"""A real syslog-ng receiver for tests, the demo and benchmarks: loopback listener, one received message per line."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

TRANSPORTS = ("tcp", "tls", "udp", "syslog-tcp")

#: Enough in-memory queue that 100,000+ events never hit syslog-ng's fifo limit.
LOG_FIFO_SIZE = 1_000_000
#: UDP has no flow control: a large socket buffer lets syslog-ng absorb a burst from a fast sender.
UDP_SO_RCVBUF = 64 * 1024 * 1024


def find_syslog_ng() -> str | None:
    """Return the syslog-ng executable (PATH first, then Debian's /usr/sbin), or ``None`` if it is not installed."""
    return shutil.which("syslog-ng") or ("/usr/sbin/syslog-ng" if os.path.exists("/usr/sbin/syslog-ng") else None)


def require_syslog_ng() -> str:
    """
    Return the syslog-ng path, or skip the calling test (fail it when ``REQUIRE_SYSLOG_NG=1``, as in CI).

    Must be called from inside a test or fixture.
    """
    import pytest  # only tests call this; the demo and benchmarks run without pytest

    binary = find_syslog_ng()
    if binary:
        return binary
    message = "syslog-ng is not installed (Debian package syslog-ng-core)"
    if os.environ.get("REQUIRE_SYSLOG_NG") == "1":
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")  # pragma: no cover


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a loopback port that is free right now."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int, udp: bool) -> bool:
    """Look the port up in /proc/net (no probe connection that syslog-ng would log)."""
    table = Path("/proc/net/udp" if udp else "/proc/net/tcp").read_text().splitlines()[1:]
    wanted = f"0100007F:{port:04X}"
    for row in table:
        fields = row.split()
        if fields[1] == wanted and (udp or fields[3] == "0A"):  # 0A = LISTEN
            return True
    return False


class SyslogNg:
    """
    Run syslog-ng in the foreground on a free loopback port; every received message becomes one line of a file.

    :param tmp_path: directory for the config, output, persist, pid and control files.
    :param transport: ``tcp``, ``tls``, ``udp`` (LF-framed ``network()`` sources) or ``syslog-tcp`` (the
        ``syslog()`` source, which understands octet counting).
    :param tls_cert: server certificate path (``tls``).
    :param tls_key: server key path (``tls``).
    :param ca: CA file used to verify client certificates (``tls``).
    :param peer_verify: syslog-ng ``peer-verify()`` value; ``optional-untrusted`` accepts clients without certs.
    :param so_rcvbuf: socket receive buffer for TCP/TLS sources (bytes; the kernel doubles it). ``None`` keeps
        the kernel's autotuning.
    :param binary: syslog-ng executable (found on PATH by default).
    """

    def __init__(
        self,
        tmp_path: Path,
        transport: str = "tcp",
        *,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        ca: Path | None = None,
        peer_verify: str = "optional-untrusted",
        so_rcvbuf: int | None = None,
        binary: str | None = None,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
        if transport == "tls" and not (tls_cert and tls_key):
            raise ValueError("transport tls needs tls_cert and tls_key")
        self.directory = Path(tmp_path) / f"syslog-ng-{transport}-{os.getpid()}-{time.monotonic_ns()}"
        self.directory.mkdir(parents=True)
        self.transport = transport
        self.tls_cert, self.tls_key, self.ca, self.peer_verify = tls_cert, tls_key, ca, peer_verify
        self.so_rcvbuf = so_rcvbuf
        self.binary = binary or find_syslog_ng() or "/usr/sbin/syslog-ng"
        self.port = free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
        self.output = self.directory / "received.log"
        self.config = self.directory / "syslog-ng.conf"
        self.control = self.directory / "syslog-ng.ctl"
        self.stderr_path = self.directory / "syslog-ng.stderr"
        self._process: subprocess.Popen[bytes] | None = None
        self.config.write_text(self._render_config())

    # -- configuration ----------------------------------------------------------------------------------------

    def _source(self) -> str:
        common = f'ip("127.0.0.1") port({self.port}) flags(no-parse) log-msg-size(65536)'
        if self.so_rcvbuf and self.transport != "udp":
            common += f" so-rcvbuf({self.so_rcvbuf})"
        if self.transport == "udp":
            return f'network(transport("udp") {common} so-rcvbuf({UDP_SO_RCVBUF}))'
        if self.transport == "syslog-tcp":
            return f'syslog(transport("tcp") {common} log-iw-size(100000) max-connections(50))'
        if self.transport == "tcp":
            return f'network(transport("tcp") {common} log-iw-size(100000) max-connections(50))'
        tls = f'key-file("{self.tls_key}") cert-file("{self.tls_cert}") peer-verify({self.peer_verify})'
        if self.ca:
            tls += f' ca-file("{self.ca}")'
        return f'network(transport("tls") {common} log-iw-size(100000) max-connections(50) tls({tls}))'

    def _render_config(self) -> str:
        return f"""@version: 3.38
options {{
    log-msg-size(65536);
    log-fifo-size({LOG_FIFO_SIZE});
    stats-level(1);
    stats-freq(0);
    use-dns(no);
    dns-cache(no);
    keep-hostname(yes);
    mark-freq(0);
}};
source s_in {{ {self._source()}; }};
destination d_out {{ file("{self.output}" template("${{MESSAGE}}\\n") flush-lines(1000)); }};
log {{ source(s_in); destination(d_out); flags(flow-control); }};
"""

    # -- process control --------------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> SyslogNg:
        """Start syslog-ng (same port as before) and wait until it listens."""
        if self._process is not None:
            return self
        stderr = self.stderr_path.open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                "-F",
                "--no-caps",
                "-f",
                str(self.config),
                "-R",
                str(self.directory / "syslog-ng.persist"),
                "-p",
                str(self.directory / "syslog-ng.pid"),
                "-c",
                str(self.control),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        deadline = time.monotonic() + timeout
        while not _listening(self.port, self.transport == "udp"):
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"syslog-ng exited at start-up:\n{self.stderr_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"syslog-ng did not listen on port {self.port} within {timeout}s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop syslog-ng gracefully (SIGTERM): it flushes what it has read to the output file."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self) -> None:
        """Stop and start again on the same port (connected senders see their connection dropped)."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the syslog-ng process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> SyslogNg:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- observations -----------------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """Every complete line written so far (one received message each)."""
        if not self.output.exists():
            return []
        data = self.output.read_bytes()
        if not data:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        return complete.decode("utf-8").split("\n")[:-1]

    def line_count(self) -> int:
        """Number of complete lines written so far (cheaper than ``len(lines())``)."""
        if not self.output.exists():
            return 0
        return self.output.read_bytes().count(b"\n")

    def wait_for_lines(self, count: int, timeout: float = 30.0, settle: float = 0.3) -> list[str]:
        """
        Wait until at least ``count`` lines arrived and no more arrive for ``settle`` seconds; return all lines.

        Returns what arrived when the timeout passes, so the caller's assertion shows the shortfall.
        """
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            current = self.line_count()
            if current != last:
                last, last_change = current, time.monotonic()
            elif current >= count and time.monotonic() - last_change >= settle:
                break
            time.sleep(0.05)
        return self.lines()

    def stats(self) -> dict[str, int]:
        """``syslog-ng-ctl stats`` as ``{"SourceName;SourceId;SourceInstance;State;Type": value}``."""
        ctl = shutil.which("syslog-ng-ctl") or "/usr/sbin/syslog-ng-ctl"
        result = subprocess.run(
            [ctl, "stats", "-c", str(self.control)], capture_output=True, text=True, timeout=10, check=True
        )
        counters: dict[str, int] = {}
        for row in result.stdout.splitlines()[1:]:
            key, _, value = row.rpartition(";")
            if value.isdigit():
                counters[key] = int(value)
        return counters

    def dropped(self) -> int:
        """Sum of syslog-ng's ``dropped`` counters (messages it discarded)."""
        return sum(value for key, value in self.stats().items() if key.endswith(";dropped"))
