"""A fault scenario's world: the constants, the credentials, the QRadar stand-in and the connections."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_atlassian_qradar.atlassian_api.guard import SecretScrubber
from sandbox.atlassian_sim import Simulator
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.faults.hostile_servers import HostileApi, StallingReceiver
from sandbox.receivers import CLIENT_KEY_PASSPHRASE, CertBundle, HttpsReceiver, SyslogNg

ORG = "org-faults"
PAGE_SIZE = 200
EVENTS_PER_HOUR = 1000
MAX_ATTEMPTS = 3
DAG_ID = "atlassian_audit_to_qradar"
TASK_ID = "deliver_audit_events"


@dataclass(frozen=True)
class Secrets:
    """Credentials a run uses; the secrets test makes them recognizable and scans everything for them.

    :param api_key: the Atlassian organization API key (connection password).
    :param client_key_pem: the TLS client key as PEM text (connection extra ``client_key``).
    :param passphrase: the passphrase of ``client_key_pem`` when it is encrypted (QRadar connection password).
    """

    api_key: str
    client_key_pem: str
    passphrase: str | None = None

    @classmethod
    def for_certs(cls, certs: CertBundle, api_key: str = "fault-matrix-api-key-0000") -> Secrets:
        """The encrypted client key of ``certs`` with its passphrase."""
        return cls(api_key, certs.client_key_encrypted.read_text(), CLIENT_KEY_PASSPHRASE)

    def needles(self) -> dict[str, str]:
        """Name -> text that must never appear anywhere: the key in every form (raw, repr/JSON-escaped,
        URL-encoded, base64, base64 of its header), the passphrase and the client key's base64 lines."""
        found = {"api_key": self.api_key}
        for index, form in enumerate(SecretScrubber(self.api_key).forms):
            if form != self.api_key:
                found[f"api_key_form_{index}"] = form
        if self.passphrase:
            found["key_passphrase"] = self.passphrase
        body = [line for line in self.client_key_pem.splitlines() if line and not line.startswith("-----")]
        for index, line in enumerate(body):
            if len(line) >= 40:  # a full base64 line of the key: unique enough to mean "the key leaked"
                found[f"client_key_line_{index}"] = line
        return found


class Receiver:
    """QRadar stand-in of one scenario: syslog-ng (tcp, tls) or the HTTP(S) receiver; yields LEEF lines."""

    def __init__(self, transport: str, workdir: Path, certs: CertBundle, server_cert: str = "server") -> None:
        self.transport = transport
        self.workdir = workdir
        self.certs = certs
        self.server_cert = server_cert
        self.http_responses: list[int] = []
        self.max_body_bytes: int | None = None
        #: a QRadar stand-in that accepts connections but does not read them until healed (tcp only)
        self.stalling: StallingReceiver | None = None
        self.stalls = False
        self._syslog: list[SyslogNg] = []
        self._http: HttpsReceiver | None = None
        self._timers: list[threading.Timer] = []

    def _cert_pair(self) -> tuple[Path, Path]:
        return {
            "server": (self.certs.server_cert, self.certs.server_key),
            "expired": (self.certs.expired_cert, self.certs.expired_key),
            "wrong_host": (self.certs.wrong_host_cert, self.certs.wrong_host_key),
        }[self.server_cert]

    def start(self) -> None:
        """Start a new receiver process/server (a new port)."""
        if self.stalls:
            self.stalling = StallingReceiver()
            return
        if self.transport in ("tcp", "tls"):
            cert, key = self._cert_pair()
            options: dict[str, Any] = {}
            if self.transport == "tls":
                options = {"tls_cert": cert, "tls_key": key, "ca": self.certs.ca_cert}
            self._syslog.append(SyslogNg(self.workdir, self.transport, **options).start())
        else:
            cert, key = self._cert_pair() if self.transport == "https" else (None, None)
            self._http = HttpsReceiver(
                cert, key, responses=list(self.http_responses), max_body_bytes=self.max_body_bytes
            ).start()

    @property
    def syslog(self) -> SyslogNg:
        """The current syslog-ng (tcp/tls only)."""
        return self._syslog[-1]

    @property
    def http(self) -> HttpsReceiver:
        """The current HTTP(S) receiver (http/https only)."""
        assert self._http is not None
        return self._http

    @property
    def port(self) -> int:
        if self.stalling is not None:
            return self.stalling.port
        return self.syslog.port if self.transport in ("tcp", "tls") else self.http.port

    def stop(self) -> None:
        """Stop the receiver (syslog-ng flushes what it read); it can be started again on the same port."""
        if self.transport in ("tcp", "tls"):
            self.syslog.stop()
        else:
            self.http.stop()

    def resume(self) -> None:
        """Start the stopped syslog-ng again on its port."""
        self.syslog.start()

    def resume_after(self, seconds: float) -> None:
        """Start the stopped syslog-ng again after ``seconds``, from a timer thread."""
        timer = threading.Timer(seconds, self.resume)
        timer.start()
        self._timers.append(timer)

    def replace(self, server_cert: str) -> None:
        """Stop this receiver and start a new one with another server certificate (the 'fix' of a cert fault)."""
        self.stop()
        self.server_cert = server_cert
        self.start()

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
            timer.join(30)
        for receiver in self._syslog:
            receiver.stop()
        if self._http is not None:
            self._http.stop()
        if self.stalling is not None:
            self.stalling.close()

    def leef_lines(self, expected: int, timeout: float = 60.0) -> list[str]:
        """Every line received by every receiver of this scenario; waits up to ``timeout`` for ``expected``."""
        if self.stalling is not None:
            deadline = time.monotonic() + timeout
            while len(self.stalling.lines(settle=0.2)) < expected and time.monotonic() < deadline:
                pass
            return self.stalling.lines()
        if self.transport in ("tcp", "tls"):
            lines: list[str] = []
            for index, receiver in enumerate(self._syslog):
                if index == len(self._syslog) - 1 and receiver.running:
                    lines.extend(receiver.wait_for_lines(max(0, expected - len(lines)), timeout=timeout, settle=1.0))
                else:
                    lines.extend(receiver.lines())
            return lines
        return self.http.accepted_lines()


@dataclass
class Env:
    """What a scenario's hooks may touch: the simulator, the receiver, the connections and the run's timers."""

    sim: Simulator
    receiver: Receiver
    secrets: Secrets
    certs: CertBundle
    atlassian_extra: dict[str, Any]
    qradar_extra: dict[str, Any]
    timers: list[threading.Timer] = field(default_factory=list)
    #: a hostile server in front of the simulator (the connection host points at it while it is set)
    front: HostileApi | None = None
    front_enabled: bool = True
    #: Atlassian connection fields that differ from the working ones (host, login, password suffix)
    atlassian_fields: dict[str, str] = field(default_factory=dict)

    def publish_connections(self) -> None:
        """(Re)write the two connections as ``AIRFLOW_CONN_*`` variables, from the current settings."""
        fields = self.atlassian_fields
        os.environ[ATLASSIAN_CONN_VAR] = atlassian_connection(
            fields.get("host") or (self.front.base_url if self.front and self.front_enabled else self.sim.base_url),
            fields.get("login", ORG),
            self.secrets.api_key + fields.get("password_suffix", ""),
            **{"stream_requests_per_minute": 0, "page_size": PAGE_SIZE, **self.atlassian_extra},
        )
        transport = self.receiver.transport
        extra: dict[str, Any] = {"protocol": transport, "batch_size": PAGE_SIZE, "max_reconnects": 4}
        password = None
        if transport in ("tls", "https"):
            extra["ca_cert"] = str(self.certs.ca_cert)
        if transport == "tls":
            extra.update(client_cert=str(self.certs.client_cert), client_key=self.secrets.client_key_pem)
            password = self.secrets.passphrase
        extra.update(self.qradar_extra)
        os.environ[QRADAR_CONN_VAR] = qradar_connection(self.receiver.port, password=password, **extra)

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``seconds`` in a timer thread (joined when the scenario ends)."""
        timer = threading.Timer(seconds, action)
        timer.start()
        self.timers.append(timer)


Hook = Callable[[Env], None]
