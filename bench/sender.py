"""
Throughput of TcpSender/TlsSender next to syslog-ng's own C load generator, into the same syslog-ng receiver.

Both senders deliver ``events`` messages of ``size`` bytes (a whole frame: header + message + LF); each figure is
events divided by the time from start until the receiver has written the last of them to its output file, so it
counts delivered messages, not bytes handed to a socket. Target: ours / loggen >= 0.8.

Run: ``python -m bench.sender [events] [size]``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow_provider_atlassian_qradar.qradar_transport import SyslogFormatter, TcpSender, TlsSender, build_ssl_context
from sandbox.receivers import SyslogNg, generate_certs

LOG_SOURCE_IDENTIFIER = "Atlassian-AuditLogs"


def _leef_records(events: int, size: int, formatter: SyslogFormatter) -> list[tuple[str, int]]:
    """Pre-encoded LEEF lines sized so that each framed message is exactly ``size`` bytes."""
    base_ms = 1767268800123
    body_bytes = size - formatter.overhead_bytes()
    records = []
    for index in range(events):
        head = f"LEEF:2.0|Atlassian|Organization Audit Log|1.0|user.login|x09|devTime={base_ms + index}\tid={index:09d}"
        records.append((head + "\tnote=" + "x" * (body_bytes - len(head) - 6), base_ms + index))
    frame = formatter.frame(*records[0])
    assert len(frame) == size, f"frame is {len(frame)} bytes, wanted {size}"
    return records


def _wait_for(receiver: SyslogNg, total_lines: int, timeout: float = 60.0) -> float:
    """Wait until the receiver's output has ``total_lines`` lines; return the monotonic time it happened."""
    deadline = time.monotonic() + timeout
    while receiver.line_count() < total_lines:
        if time.monotonic() > deadline:
            raise RuntimeError(f"receiver has {receiver.line_count()} of {total_lines} lines after {timeout}s")
        time.sleep(0.002)
    return time.monotonic()


def _time_loggen(receiver: SyslogNg, events: int, size: int, tls: bool) -> float:
    loggen = shutil.which("loggen") or "/usr/bin/loggen"
    already = receiver.line_count()
    # -S (plain stream) and -U (TLS stream) are separate loggen plugins: exactly one may be given.
    command = [loggen, "-U" if tls else "-S", "-s", str(size), "-n", str(events), "-r", "100000000", "-I", "600"]
    started = time.monotonic()
    finished = subprocess.run(
        [*command, "-Q", "127.0.0.1", str(receiver.port)], capture_output=True, text=True, timeout=300
    )
    if finished.returncode != 0 or "error" in finished.stderr.lower():  # loggen exits 0 on usage errors
        raise RuntimeError(f"loggen failed: {finished.stderr.strip()[-500:]}")
    return events / (_wait_for(receiver, already + events) - started)


def _time_ours(
    receiver: SyslogNg, records: list[tuple[str, int]], formatter: SyslogFormatter, tls_ca: Path | None
) -> float:
    already = receiver.line_count()
    if tls_ca is None:
        sender: TcpSender = TcpSender("127.0.0.1", receiver.port, formatter)
    else:
        sender = TlsSender("127.0.0.1", receiver.port, formatter, ssl_context=build_ssl_context(ca_cert=str(tls_ca)))
    started = time.monotonic()
    with sender:
        sender.send(records)
    return len(records) / (_wait_for(receiver, already + len(records)) - started)


def run(events: int = 200_000, size: int = 400) -> dict[str, Any]:
    """
    Measure loggen and our sender over TCP and TLS on loopback into syslog-ng.

    :param events: messages per sender and transport.
    :param size: bytes per framed message (loggen ``-s``).
    :return: events/s for each sender and the ratio ours/loggen per transport.
    """
    formatter = SyslogFormatter(hostname=LOG_SOURCE_IDENTIFIER)
    records = _leef_records(events, size, formatter)
    result: dict[str, Any] = {"events": events, "size": size}
    with tempfile.TemporaryDirectory(prefix="bench-sender-") as scratch:
        directory = Path(scratch)
        certs = generate_certs(directory / "certs")
        with SyslogNg(directory, "tcp") as receiver:
            result["tcp_loggen_eps"] = round(_time_loggen(receiver, events, size, tls=False))
            result["tcp_ours_eps"] = round(_time_ours(receiver, records, formatter, None))
            result["tcp_lines_received"] = receiver.line_count()
        with SyslogNg(directory, "tls", tls_cert=certs.server_cert, tls_key=certs.server_key) as receiver:
            result["tls_loggen_eps"] = round(_time_loggen(receiver, events, size, tls=True))
            result["tls_ours_eps"] = round(_time_ours(receiver, records, formatter, certs.ca_cert))
            result["tls_lines_received"] = receiver.line_count()
    for transport in ("tcp", "tls"):
        result[f"{transport}_ratio_ours_to_loggen"] = round(
            result[f"{transport}_ours_eps"] / result[f"{transport}_loggen_eps"], 2
        )
    return result


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    print(json.dumps(run(*arguments), indent=2))
