"""The fault matrix: one scenario per injected failure, a runner that plays it and a row that says what happened.

Each in-process scenario starts the Atlassian simulator and a real receiver (syslog-ng for TCP/TLS, the HTTPS
receiver for HTTP), runs :class:`AtlassianAuditLogToQRadarOperator` over one real hourly window and injects its
fault. A failed attempt is retried the way Airflow retries a task: ``execute`` again with the same task state
store (no retry delay is emulated). What the receiver got is compared with the simulator's ground truth.

The SIGKILL scenario runs the real scheduler (LocalExecutor, SQLite) and kills the task process mid-window.

Bounds every row must meet (the fault-injection issue): missing 0; duplicates at most one batch on TCP/TLS
(:data:`PAGE_SIZE` events: the page size, which is also the sender's batch size here) and 0 on HTTP; every
received line parses to exactly one event with a known eventId. A fault no retry can fix must fail with a
message that names the cause and the fix; its "after fix" run must then meet the same bounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

from airflow_provider_atlassian_qradar.atlassian_api.guard import SecretScrubber
from airflow_provider_atlassian_qradar.hooks.qradar import QRadarHook
from airflow_provider_atlassian_qradar.leef import is_schema_key, parse_leef
from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from sandbox.atlassian_sim import Simulator, SimulatorConfig, run_in_thread
from sandbox.syslog_ng import SyslogNg
from tests.hostile.servers import (
    Behaviour,
    HostileApi,
    StallingReceiver,
    echo_authorization,
    gzip_answer,
    gzip_bomb,
    huge_body,
    json_answer,
    redirect,
    trickle,
)
from tests.receivers.certs import CLIENT_KEY_PASSPHRASE, CertBundle
from tests.receivers.https_receiver import HttpsReceiver

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


# --- the run environment ----------------------------------------------------------------------------------------


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
        os.environ["AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT"] = json.dumps(
            {
                "conn_type": "atlassian_admin",
                "host": fields.get("host")
                or (self.front.base_url if self.front and self.front_enabled else self.sim.base_url),
                "login": fields.get("login", ORG),
                "password": self.secrets.api_key + fields.get("password_suffix", ""),
                "extra": {"stream_requests_per_minute": 0, "page_size": PAGE_SIZE, **self.atlassian_extra},
            }
        )
        transport = self.receiver.transport
        extra: dict[str, Any] = {"protocol": transport, "batch_size": PAGE_SIZE, "max_reconnects": 4}
        conn: dict[str, Any] = {"conn_type": "qradar", "host": "127.0.0.1", "port": self.receiver.port}
        if transport in ("tls", "https"):
            extra["ca_cert"] = str(self.certs.ca_cert)
        if transport == "tls":
            extra.update(client_cert=str(self.certs.client_cert), client_key=self.secrets.client_key_pem)
            if self.secrets.passphrase:
                conn["password"] = self.secrets.passphrase
        extra.update(self.qradar_extra)
        conn["extra"] = extra
        os.environ["AIRFLOW_CONN_QRADAR_DEFAULT"] = json.dumps(conn)

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``seconds`` in a timer thread (joined when the scenario ends)."""
        timer = threading.Timer(seconds, action)
        timer.start()
        self.timers.append(timer)


Hook = Callable[[Env], None]


@dataclass(frozen=True)
class Scenario:
    """One row of the matrix.

    :param name: the row label.
    :param group: API, Receiver, Combined or Worker.
    :param transport: tcp, tls, http or https.
    :param expect: ``success`` (possibly after task retries) or ``failed`` (no retry can fix it).
    :param faults: simulator fault switches set before the first attempt.
    :param mid_window: applied once, right after page ``after_page`` was handed to the sender.
    :param after_page: see ``mid_window``.
    :param before_first: applied before the first attempt (e.g. the receiver is down).
    :param between_attempts: applied after a failed attempt, before the emulated Airflow retry.
    :param fix: for ``failed`` scenarios: what the operator's user does after reading the message; the task is
        then cleared and run once more (with the same task state store).
    :param message: regular expressions the final failure message must match (cause and fix).
    :param atlassian_extra: Atlassian connection extras (e.g. fewer hook retries).
    :param qradar_extra: QRadar connection extras.
    :param server_cert: the receiver's certificate: server, expired or wrong_host.
    :param trusted_ca: whether the QRadar connection's ``ca_cert`` is the CA that issued the receiver's certificate.
    :param http_responses: the HTTP receiver's scripted statuses for the first POSTs.
    :param max_body_bytes: the HTTP receiver's body limit (413 above it).
    :param known_defect: why this row cannot meet the bounds and what would fix it (reported, not hidden).
    """

    name: str
    group: str
    transport: str = "tcp"
    expect: str = "success"
    faults: Mapping[str, Any] = field(default_factory=dict)
    mid_window: Hook | None = None
    after_page: int = 2
    before_first: Hook | None = None
    between_attempts: Hook | None = None
    fix: Hook | None = None
    message: tuple[str, ...] = ()
    atlassian_extra: Mapping[str, Any] = field(default_factory=dict)
    qradar_extra: Mapping[str, Any] = field(default_factory=dict)
    server_cert: str = "server"
    trusted_ca: bool = True
    http_responses: tuple[int, ...] = ()
    max_body_bytes: int | None = None
    known_defect: str | None = None
    front: Callable[[], dict[int, Behaviour]] | None = None
    atlassian_fields: Mapping[str, str] = field(default_factory=dict)
    stalling_receiver: bool = False

    @property
    def duplicate_bound(self) -> int:
        """At most one batch on TCP/TLS, none on HTTP (a 2xx is a receipt)."""
        return PAGE_SIZE if self.transport in ("tcp", "tls") else 0


@dataclass
class Row:
    """What one scenario produced."""

    scenario: str
    group: str
    transport: str
    expected: str
    outcome: str = "not run"
    attempts: int = 0
    missing: int | None = None
    duplicates: int | None = None
    duplicate_bound: int = 0
    malformed: int = 0
    unknown: int = 0
    forged_keys: int = 0
    #: bytes of the Atlassian API key, in any form, found in the row's errors, tracebacks, XComs, events or logs
    key_bytes: int = 0
    seconds: float = 0.0
    message: str = ""
    after_fix: str = ""
    problems: list[str] = field(default_factory=list)
    known_defect: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def meets_bounds(self) -> bool:
        """Whether every bound of the issue holds for this row."""
        return not self.problems


# --- the scenario table ---------------------------------------------------------------------------------------


def _faults(**switches: Any) -> Hook:
    def apply(env: Env) -> None:
        env.sim.faults.update(**switches)

    return apply


def _clear_faults(env: Env) -> None:
    env.sim.faults.clear()


def _slow_api_for_a_while(env: Env) -> None:
    # Longer than the hook's 1.5 s read timeout, for about 5 s: a few requests time out, then answers come.
    env.sim.faults.update(slow_seconds=4)
    env.later(5, lambda: env.sim.faults.update(slow_seconds=0))


def _read_so_far(env: Env) -> None:
    # Let syslog-ng read the two pages already sent, so the duplicates depend on the sender, not on timing.
    env.receiver.syslog.wait_for_lines(2 * PAGE_SIZE, timeout=60)


def _stop_receiver(env: Env) -> None:
    if env.receiver.transport in ("tcp", "tls") and env.receiver.syslog.running:
        _read_so_far(env)
    env.receiver.stop()


def _resume_receiver(env: Env) -> None:
    env.receiver.resume()


def _drop_receiver_briefly(env: Env) -> None:
    _stop_receiver(env)
    env.receiver.resume_after(3)


def _restart_receiver(env: Env) -> None:
    _read_so_far(env)
    env.receiver.syslog.restart()


def _good_server_cert(env: Env) -> None:
    env.receiver.replace("server")
    env.publish_connections()


def _trust_the_right_ca(env: Env) -> None:
    env.qradar_extra["ca_cert"] = str(env.certs.ca_cert)
    env.publish_connections()


def _http_503_storm(env: Env) -> None:
    env.receiver.http.responses.extend([503] * 5)


def _combined_api_storm(env: Env) -> None:
    env.sim.faults.update(rate_limit_burst=2, retry_after_seconds=0.3, server_error_burst=2, reset_mid_body=1)


def _api_503_and_receiver_restart(env: Env) -> None:
    env.sim.faults.update(server_error_burst=2, server_error_status=503)
    _restart_receiver(env)


def _malformed_then_odd_pages(env: Env) -> None:
    env.sim.faults.update(malformed_json=1, repeat_previous_page=1, empty_page_with_cursor=1, reject_cursor=1)


def _working_connection(env: Env) -> None:
    """The fix of a hostile-endpoint row: point the connection at the real API again, with the right fields."""
    env.front_enabled = False
    env.atlassian_fields.clear()
    env.publish_connections()


def _heal_receiver(env: Env) -> None:
    assert env.receiver.stalling is not None
    env.receiver.stalling.heal()


def _raise_body_limit(env: Env) -> None:
    env.receiver.stop()
    env.receiver.max_body_bytes = None
    env.receiver.start()
    env.publish_connections()


#: The hostile front's request numbers: 1 is /event-actions, 2 the first page, 3 the second page.
SECOND_PAGE = 3


def _front(behaviour: Callable[[], Behaviour], *, times: int = 1) -> Callable[[], dict[int, Behaviour]]:
    """A front script that answers the second page's request (and the next ``times - 1``) with ``behaviour``."""
    return lambda: {SECOND_PAGE + index: behaviour() for index in range(times)}


PERSISTENT = 10**6

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("no fault (reference run)", "API"),
    Scenario(
        "429 x4, Retry-After",
        "API",
        mid_window=_faults(rate_limit_burst=4, rate_limit_headers="retry-after", retry_after_seconds=0.3),
    ),
    Scenario(
        "429 x4, X-Retry-After",
        "API",
        mid_window=_faults(rate_limit_burst=4, rate_limit_headers="x-retry-after", retry_after_seconds=0.3),
    ),
    Scenario(
        "429 x3, X-RateLimit-Reset only",
        "API",
        mid_window=_faults(rate_limit_burst=3, rate_limit_headers="reset-only", retry_after_seconds=0.3),
    ),
    Scenario("429 x3, no header (backoff)", "API", mid_window=_faults(rate_limit_burst=3, rate_limit_headers="none")),
    Scenario(
        "429 storm outlasting the hook's retries",
        "API",
        atlassian_extra={"max_retries": 2},
        mid_window=_faults(rate_limit_burst=4, rate_limit_headers="all", retry_after_seconds=0.3),
    ),
    Scenario("500 x3", "API", mid_window=_faults(server_error_burst=3, server_error_status=500)),
    Scenario("502 x3", "API", mid_window=_faults(server_error_burst=3, server_error_status=502)),
    Scenario("503 x3", "API", mid_window=_faults(server_error_burst=3, server_error_status=503)),
    Scenario(
        "503 outlasting the hook's retries",
        "API",
        atlassian_extra={"max_retries": 2},
        mid_window=_faults(server_error_burst=4, server_error_status=503),
    ),
    Scenario("connection reset mid-body x2", "API", mid_window=_faults(reset_mid_body=2)),
    Scenario(
        "read timeout (API slower than timeout)",
        "API",
        atlassian_extra={"timeout": 1.5},
        mid_window=_slow_api_for_a_while,
    ),
    Scenario("malformed JSON x2", "API", mid_window=_faults(malformed_json=2)),
    Scenario("empty page with a non-null cursor", "API", mid_window=_faults(empty_page_with_cursor=1)),
    Scenario("page repeating the previous page", "API", mid_window=_faults(repeat_previous_page=1)),
    Scenario("cursor rejected (400 ADMIN-400-1)", "API", mid_window=_faults(reject_cursor=1)),
    Scenario(
        "links.next to a foreign host",
        "API",
        expect="failed",
        faults={"foreign_next_link": PERSISTENT},
        fix=_clear_faults,
        message=(r"refusing to follow links\.next to https://evil\.example\.net", r"update the connection host"),
    ),
    Scenario(
        "API key revoked mid-window (401)",
        "API",
        expect="failed",
        faults={"revoke_key_after": 4},  # /event-actions + 3 pages, then 401 for good
        fix=_faults(revoke_key_after=None),
        message=(r"401 ADMIN-401-1", r"create a new organization API key .* update the connection's password"),
    ),
    Scenario(
        "receiver not listening at start",
        "Receiver",
        qradar_extra={"max_reconnects": 2},
        before_first=_stop_receiver,
        between_attempts=_resume_receiver,
    ),
    Scenario(
        "connection dropped mid-window, back in 3 s",
        "Receiver",
        mid_window=_drop_receiver_briefly,
    ),
    Scenario(
        "connection dropped mid-window beyond the reconnect budget",
        "Receiver",
        qradar_extra={"max_reconnects": 1},
        mid_window=_stop_receiver,
        between_attempts=_resume_receiver,
    ),
    Scenario("receiver restarted mid-window (TCP)", "Receiver", mid_window=_restart_receiver),
    Scenario(
        "receiver restarted mid-window (TLS)",
        "Receiver",
        transport="tls",
        mid_window=_restart_receiver,
    ),
    Scenario(
        "TLS certificate not matching the host",
        "Receiver",
        transport="tls",
        expect="failed",
        server_cert="wrong_host",
        fix=_good_server_cert,
        message=(
            r"TLS verification of QRadar at 127\.0\.0\.1:\d+ failed: (IP address|Hostname) mismatch",
            r"connect with a name the certificate lists",
        ),
    ),
    Scenario(
        "TLS certificate expired",
        "Receiver",
        transport="tls",
        expect="failed",
        server_cert="expired",
        fix=_good_server_cert,
        message=(r"TLS verification of QRadar .* failed: certificate has expired", r"renew an expired certificate"),
    ),
    Scenario(
        "TLS certificate untrusted (other CA)",
        "Receiver",
        transport="tls",
        expect="failed",
        trusted_ca=False,
        fix=_trust_the_right_ca,
        message=(
            r"TLS verification of QRadar .* failed: (unable to get local issuer|self-signed certificate in)",
            r"Set ca_cert to the CA that issued it",
        ),
    ),
    Scenario("HTTP Receiver 503 x2 then 200", "Receiver", transport="http", http_responses=(503, 503)),
    Scenario(
        "HTTP Receiver 503 outlasting the sender's retries", "Receiver", transport="http", mid_window=_http_503_storm
    ),
    Scenario("HTTP Receiver 413 (body limit 48 KiB)", "Receiver", transport="http", max_body_bytes=48 * 1024),
    Scenario(
        "HTTPS Receiver certificate untrusted",
        "Receiver",
        transport="https",
        expect="failed",
        trusted_ca=False,
        fix=_trust_the_right_ca,
        message=(
            r"TLS with the QRadar HTTP Receiver at https://127\.0\.0\.1:\d+/ failed",
            r"Set ca_cert to the CA that issued the receiver's certificate",
        ),
    ),
    Scenario("429 + 503 + reset mid-body together", "Combined", mid_window=_combined_api_storm),
    Scenario(
        "malformed JSON + repeated page + empty page + rejected cursor",
        "Combined",
        mid_window=_malformed_then_odd_pages,
    ),
    Scenario(
        "API 503 burst + receiver restart (TCP)",
        "Combined",
        mid_window=_api_503_and_receiver_restart,
    ),
    # Hostile and broken endpoints (issue 13): real loopback servers of our own, in front of the simulator.
    Scenario(
        "API key with a trailing newline",
        "Hostile",
        expect="failed",
        atlassian_fields={"password_suffix": "\n"},
        fix=_working_connection,
        message=(r"the API key \(password field\) has leading or trailing whitespace", r"paste it again"),
    ),
    Scenario(
        "API host plain http, not loopback",
        "Hostile",
        expect="failed",
        atlassian_fields={"host": "http://audit-proxy.example.com"},
        fix=_working_connection,
        message=(r"is plain http to a host that is not loopback", r'"allow_insecure_http": true'),
    ),
    Scenario(
        "API org id with ../",
        "Hostile",
        expect="failed",
        atlassian_fields={"login": "../other-org"},
        fix=_working_connection,
        message=(r"the Organization ID \(login field\) '\.\./other-org' is not an organization id",),
    ),
    Scenario(
        "API answers 302 to another origin",
        "Hostile",
        expect="failed",
        front=_front(lambda: redirect("https://evil.example.net/admin/v1/orgs/x/events-stream?cursor=1")),
        fix=_working_connection,
        message=(r"302 redirecting to https://evil\.example\.net: API calls never follow redirects",),
    ),
    Scenario(
        "API gzip bomb (1 MB -> 1 GiB)",
        "Hostile",
        expect="failed",
        front=_front(lambda: gzip_answer(gzip_bomb(1 << 30), already_compressed=True)),
        fix=_working_connection,
        message=(r"decompresses to more than 33,554,432 bytes", r"'max_response_bytes'"),
    ),
    Scenario(
        "API 50 MiB body",
        "Hostile",
        expect="failed",
        front=_front(lambda: huge_body(50 * 1024 * 1024, declared=False)),
        fix=_working_connection,
        message=(r"is more than 33,554,432 bytes",),
    ),
    Scenario(
        "API trickling 1 byte / 3 s (headers), 2 s deadline",
        "Hostile",
        atlassian_extra={"request_deadline": 2, "timeout": 10},
        front=_front(lambda: trickle("headers", 3.0, threading.Event())),
    ),
    Scenario(
        "API trickling 1 byte / 3 s (body), 2 s deadline",
        "Hostile",
        atlassian_extra={"request_deadline": 2, "timeout": 10},
        front=_front(lambda: trickle("body", 3.0, threading.Event())),
    ),
    Scenario(
        "API echoing the key in a 401 body",
        "Hostile",
        expect="failed",
        front=_front(lambda: echo_authorization(401)),
        fix=_working_connection,
        message=(r"Atlassian returned 401 ADMIN-401-1", r"\*\*\*"),
    ),
    Scenario(
        "API echoing the key in 500 bodies x2",
        "Hostile",
        front=_front(lambda: echo_authorization(500), times=2),
    ),
    Scenario(
        "429 with negative, NaN and past-reset hints",
        "Hostile",
        front=lambda: {
            SECOND_PAGE: json_answer(429, {}, {"Retry-After": "-5"}),
            SECOND_PAGE + 1: json_answer(429, {}, {"Retry-After": "nan"}),
            SECOND_PAGE + 2: json_answer(429, {}, {"X-RateLimit-Reset": "2020-01-01T00:00:00Z"}),
        },
    ),
    Scenario(
        "429 with Retry-After as an HTTP date ending -0000",
        "Hostile",
        front=lambda: {SECOND_PAGE: json_answer(429, {}, {"Retry-After": _http_date_in(2.0)})},
    ),
    Scenario(
        "receiver accepts TCP but stops reading",
        "Hostile",
        stalling_receiver=True,
        qradar_extra={"write_timeout": 1, "max_reconnects": 1},
        between_attempts=_heal_receiver,
    ),
    Scenario(
        "HTTP Receiver 413 for a single event",
        "Hostile",
        transport="http",
        expect="failed",
        max_body_bytes=200,
        fix=_raise_body_limit,
        message=(r"rejected a single event of \d+ bytes as too large \(413\)", r"lower max_frame_bytes"),
    ),
)


def _http_date_in(seconds: float) -> str:
    """An HTTP date ``seconds`` from now, written from a naive datetime (so it ends ``-0000``)."""
    import email.utils

    return email.utils.format_datetime(datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=seconds))


SIGKILL_SCENARIO = "task process SIGKILLed mid-window, retried by Airflow"


def scenario_names() -> list[str]:
    """Names of the in-process scenarios, in table order."""
    return [scenario.name for scenario in SCENARIOS]


# --- the runner -------------------------------------------------------------------------------------------------


def window_start() -> datetime:
    """The hour every scenario delivers: yesterday, so it is settled and inside retention."""
    return (datetime.now(timezone.utc) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


class DictStore:
    """The task state store's interface (get/set/delete) kept in a dict, JSON round-tripped like the real one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@dataclass
class Tally:
    """Received lines against the ground truth."""

    counts: Counter[str]
    missing: int
    duplicates: int
    malformed: int
    unknown: int
    forged_keys: int


def tally(lines: list[str], truth: set[str]) -> Tally:
    """Parse every received line (after any syslog header) as one LEEF event and count against ``truth``."""
    counts: Counter[str] = Counter()
    malformed = unknown = forged = 0
    for line in lines:
        start = line.find("LEEF:")
        if start < 0:
            malformed += 1
            continue
        try:
            _header, attributes = parse_leef(line[start:])
        except ValueError:
            malformed += 1  # a split or merged frame does not parse (or repeats keys)
            continue
        forged += sum(1 for key in attributes if not is_schema_key(key))
        event_id = attributes.get("eventId", "")
        if event_id not in truth:
            unknown += 1
            continue
        counts[event_id] += 1
    return Tally(
        counts=counts,
        missing=len(truth - set(counts)),
        duplicates=sum(counts.values()) - len(counts),
        malformed=malformed,
        unknown=unknown,
        forged_keys=forged,
    )


@contextlib.contextmanager
def _saved_environ(*names: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _after_page(page: int, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, right after the ``page``-th ``send`` of any QRadar sender in this process returns."""
    original = QRadarHook.get_sender
    state = {"pages": 0, "fired": False}

    class SenderSpy:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def __enter__(self) -> SenderSpy:
            self.inner.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self.inner.__exit__(*exc)

        def send(self, records: Any) -> int:
            count = int(self.inner.send(records))
            state["pages"] += 1
            if state["pages"] == page and not state["fired"]:
                state["fired"] = True
                action()
            return count

    def get_sender(hook: QRadarHook) -> Any:
        return SenderSpy(original(hook))

    with mock.patch.object(QRadarHook, "get_sender", get_sender):
        yield


def _operator(start: datetime, **kwargs: Any) -> AtlassianAuditLogToQRadarOperator:
    return AtlassianAuditLogToQRadarOperator(
        task_id="deliver",
        window_start=start.isoformat(),
        window_end=(start + timedelta(hours=1)).isoformat(),
        **kwargs,
    )


def run_attempts(
    operator_factory: Callable[[], AtlassianAuditLogToQRadarOperator],
    store: DictStore,
    *,
    max_attempts: int,
    between_attempts: Callable[[], None] | None = None,
    errors: list[BaseException] | None = None,
) -> tuple[dict[str, Any] | None, int, BaseException | None]:
    """Emulate Airflow's retries: ``execute`` again with the same task state store after each failure.

    Stops at once on ``AirflowFailException`` (Airflow does not retry it). Returns (summary or None, attempts,
    the last error).
    """
    from airflow.sdk.exceptions import AirflowFailException

    last: BaseException | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            return operator_factory().execute({"task_state_store": store}), attempt, None
        except Exception as err:  # the task failed: Airflow records it and retries
            last = err
            if errors is not None:
                errors.append(err)
            if isinstance(err, AirflowFailException) or attempt == max_attempts:
                return None, attempt, err
            if between_attempts is not None:
                between_attempts()
    return None, max_attempts, last


def run_scenario(
    scenario: Scenario,
    workdir: Path,
    certs: CertBundle,
    secrets: Secrets | None = None,
    *,
    errors: list[BaseException] | None = None,
    archive_path: str | None = None,
    summaries: list[dict[str, Any]] | None = None,
    received: list[str] | None = None,
) -> Row:
    """Play one scenario end to end and return its row.

    :param errors: every exception a task attempt raised is appended here (the secrets test scans them).
    :param archive_path: pass the operator an archive path (the secrets test scans the archive files).
    :param summaries: every successful attempt's return value (its XCom) is appended here.
    :param received: every line the receiver got is appended here.
    """
    secrets = secrets or Secrets.for_certs(certs)
    workdir.mkdir(parents=True, exist_ok=True)
    start = window_start()
    row = Row(scenario.name, scenario.group, scenario.transport, scenario.expect, known_defect=scenario.known_defect)
    row.duplicate_bound = scenario.duplicate_bound
    config = SimulatorConfig(
        org_id=ORG,
        api_key=secrets.api_key,
        start=start - timedelta(minutes=30),
        end=start + timedelta(minutes=90),
        events_per_hour=EVENTS_PER_HOUR,
        seed=11,
        hostile_ratio=0.02,
        stream_requests_per_minute=0,
        events_requests_per_minute=0,
    )
    receiver = Receiver(scenario.transport, workdir, certs, scenario.server_cert)
    receiver.http_responses = list(scenario.http_responses)
    receiver.max_body_bytes = scenario.max_body_bytes
    receiver.stalls = scenario.stalling_receiver
    store = DictStore()
    operator_kwargs: dict[str, Any] = {"archive_path": archive_path} if archive_path else {}
    row_errors: list[BaseException] = []
    row_summaries: list[dict[str, Any]] = []

    def operator() -> AtlassianAuditLogToQRadarOperator:
        return _operator(start, **operator_kwargs)

    def record(summary: dict[str, Any] | None) -> None:
        if summary is not None:
            row_summaries.append(summary)
            if summaries is not None:
                summaries.append(summary)

    with (
        _saved_environ("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", "AIRFLOW_CONN_QRADAR_DEFAULT"),
        run_in_thread(config) as sim,
    ):
        env = Env(sim, receiver, secrets, certs, dict(scenario.atlassian_extra), dict(scenario.qradar_extra))
        env.atlassian_fields.update(scenario.atlassian_fields)
        if scenario.front is not None:
            env.front = HostileApi(scenario.front(), upstream=sim.base_url).__enter__()
        if not scenario.trusted_ca:
            env.qradar_extra["ca_cert"] = str(certs.other_ca_cert)
        try:
            receiver.start()
            env.publish_connections()
            sim.faults.update(**scenario.faults)
            if scenario.before_first is not None:
                scenario.before_first(env)
            truth = set(sim.ground_truth(start, start + timedelta(hours=1)))
            mid = scenario.mid_window
            patch = _after_page(scenario.after_page, lambda: mid(env)) if mid is not None else contextlib.nullcontext()
            between = scenario.between_attempts
            started = time.monotonic()
            with patch:
                summary, row.attempts, error = run_attempts(
                    operator,
                    store,
                    max_attempts=MAX_ATTEMPTS,
                    between_attempts=(lambda: between(env)) if between is not None else None,
                    errors=row_errors,
                )
            record(summary)
            row.summary = summary
            if error is not None:
                row.message = _one_line(error)
            if summary is not None:
                row.outcome = "success" if row.attempts == 1 else f"success after {row.attempts} attempts"
            else:
                row.outcome = f"failed after {row.attempts} attempts"
            for timer in env.timers:
                timer.join(60)
            if summary is None and scenario.fix is not None:
                sim.faults.clear()
                scenario.fix(env)
                fixed_summary, _attempts, fixed_error = run_attempts(operator, store, max_attempts=1, errors=row_errors)
                record(fixed_summary)
                row.after_fix = "success" if fixed_summary is not None else f"still failing: {_one_line(fixed_error)}"
            row.seconds = time.monotonic() - started
            delivered = summary is not None or row.after_fix == "success"
            lines = receiver.leef_lines(len(truth) if delivered else 0, timeout=60 if delivered else 2)
            if received is not None:
                received.extend(lines)
            got = tally(lines, truth)
        finally:
            for timer in env.timers:
                timer.cancel()
            receiver.close()
            if env.front is not None:
                env.front.__exit__(None, None, None)
            if errors is not None:
                errors.extend(row_errors)
    texts = [json.dumps(row_summaries), *lines]
    for failure in row_errors:
        texts += [str(failure), repr(failure), *traceback.format_exception(failure)]
    row.key_bytes = key_bytes(secrets.api_key, texts)
    row.malformed, row.unknown, row.forged_keys = got.malformed, got.unknown, got.forged_keys
    if summary is not None or row.after_fix == "success":
        row.missing, row.duplicates = got.missing, got.duplicates
    _judge(scenario, row, got, len(truth))
    return row


def key_bytes(api_key: str, texts: list[str]) -> int:
    """Bytes of ``api_key`` found in ``texts`` in any form (raw, escaped, URL-encoded, base64)."""
    forms = SecretScrubber(api_key).forms
    return sum(text.count(form) * len(form) for text in texts for form in forms)


def _one_line(error: BaseException | None) -> str:
    return " ".join(str(error).split()) if error is not None else ""


def _judge(scenario: Scenario, row: Row, got: Tally, truth_size: int) -> None:
    problems = row.problems
    if scenario.expect == "success" and not row.outcome.startswith("success"):
        problems.append(f"expected success, got {row.outcome}: {row.message}")
    if scenario.expect == "failed":
        if row.outcome.startswith("success"):
            problems.append("expected a failure that names the cause and the fix, but the task succeeded")
        elif row.attempts != 1:
            problems.append(f"a fault no retry can fix must fail at once, not after {row.attempts} attempts")
        for pattern in scenario.message:
            if not re.search(pattern, row.message):
                problems.append(f"failure message lacks /{pattern}/: {row.message[:300]}")
        if row.after_fix != "success":
            problems.append(f"after the fix the task did not succeed: {row.after_fix}")
    if row.missing is not None and row.missing:
        problems.append(f"{row.missing} of {truth_size} events missing")
    if row.duplicates is not None and row.duplicates > row.duplicate_bound:
        problems.append(f"{row.duplicates} duplicates > bound {row.duplicate_bound}")
    if row.key_bytes:
        problems.append(f"{row.key_bytes} bytes of the API key in errors, XComs or events")
    if got.malformed or got.unknown or got.forged_keys:
        problems.append(
            f"{got.malformed} lines not one LEEF event, {got.unknown} unknown eventIds, {got.forged_keys} forged keys"
        )


def run_matrix(
    workdir: Path, certs: CertBundle, names: list[str] | None = None, progress: Callable[[Row], None] | None = None
) -> list[Row]:
    """Run the in-process scenarios (all, or those named) one after the other."""
    rows = []
    for index, scenario in enumerate(SCENARIOS):
        if names is not None and scenario.name not in names:
            continue
        row = run_scenario(scenario, workdir / f"scenario-{index:02d}", certs)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows


# --- the worker killed with SIGKILL, on the real scheduler --------------------------------------------------------


@dataclass
class AirflowArtifacts:
    """What a real Airflow run left that could carry a secret: task logs, XCom, rendered fields, service logs."""

    task_logs: dict[str, str] = field(default_factory=dict)
    service_logs: dict[str, str] = field(default_factory=dict)
    xcom: Any = None
    rendered_fields: Any = None
    task_instance: dict[str, Any] = field(default_factory=dict)


_TASK_RUNNER_TITLE = re.compile(r"airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def task_runner_processes(scheduler_pid: int) -> list[Any]:
    """The task processes under a scheduler: Airflow 3 titles them ``airflow worker -- <ti id>``.

    LocalExecutor workers fork a supervisor per task, which forks the task runner; only the runner carries that
    title, so killing it is "the task process died", and the supervisor reports the death to the scheduler.
    """
    import psutil

    try:
        children = psutil.Process(scheduler_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            title = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if _TASK_RUNNER_TITLE.match(
            title.strip()
        ):  # not "airflow worker -- LocalExecutor: ..." (the executor's workers)
            found.append(child)
    return found


def run_sigkill_scenario(workdir: Path, api_key: str, *, timeout: float = 1200) -> tuple[Row, AirflowArtifacts]:
    """Backfill one busy window on the real scheduler, SIGKILL the task process mid-window, let Airflow retry.

    :param api_key: the Atlassian key the connection carries (the secrets test makes it recognizable).
    """
    from sandbox.airflow_stack import AirflowHome, airflow_services

    row = Row(SIGKILL_SCENARIO, "Worker", "tcp", "success", duplicate_bound=PAGE_SIZE)
    artifacts = AirflowArtifacts()
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    busy = now_hour - timedelta(hours=30)
    config = SimulatorConfig(
        org_id=ORG,
        api_key=api_key,
        start=busy - timedelta(minutes=30),
        end=busy + timedelta(minutes=90),
        events_per_hour=EVENTS_PER_HOUR,
        seed=12,
        hostile_ratio=0.02,
        stream_requests_per_minute=0,
    )
    started = time.monotonic()
    with run_in_thread(config) as sim, SyslogNg(workdir, "tcp") as syslog:
        env = {
            "AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT": json.dumps(
                {
                    "conn_type": "atlassian_admin",
                    "host": sim.base_url,
                    "login": ORG,
                    "password": api_key,
                    "extra": {"page_size": PAGE_SIZE},
                }
            ),
            "AIRFLOW_CONN_QRADAR_DEFAULT": json.dumps(
                {
                    "conn_type": "qradar",
                    "host": "127.0.0.1",
                    "port": syslog.port,
                    "extra": {"protocol": "tcp", "batch_size": PAGE_SIZE},
                }
            ),
            # No catch-up work: the only run is the backfilled busy hour.
            "ATLASSIAN_QRADAR_START_DATE": now_hour.isoformat(),
        }
        home = AirflowHome(workdir / "airflow-home", extra_env=env)
        home.migrate()
        truth = set(sim.ground_truth(busy, busy + timedelta(hours=1)))
        with airflow_services(home) as airflow:
            airflow.wait_for_dag(DAG_ID, timeout=300)
            airflow.create_backfill(
                DAG_ID, busy.isoformat(), busy.isoformat(), max_active_runs=1, reprocess_behavior="none"
            )
            killed = _kill_task_mid_window(syslog, airflow.processes["scheduler"].pid, timeout=600)
            runs = airflow.wait_for_runs(DAG_ID, 1, timeout=timeout)
            run = runs[0]
            ti_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/{TASK_ID}"
            artifacts.task_instance = dict(airflow.api("GET", ti_path))
            artifacts.rendered_fields = artifacts.task_instance.get("rendered_fields")
            with contextlib.suppress(RuntimeError):
                artifacts.xcom = airflow.api("GET", f"{ti_path}/xcomEntries/return_value")
            lines = syslog.wait_for_lines(len(truth), timeout=120, settle=1.0)
        for path in sorted((home.path / "logs").rglob("*")):
            if path.is_file():
                artifacts.task_logs[str(path.relative_to(home.path))] = path.read_text(errors="replace")
        for path in sorted((home.path / "service-logs").glob("*.log")):
            artifacts.service_logs[path.name] = path.read_text(errors="replace")
    row.seconds = time.monotonic() - started
    tries = int(artifacts.task_instance.get("try_number") or 0)
    row.attempts = tries
    state = run["state"]
    row.outcome = f"{state} after {tries} attempts" if tries > 1 else state
    if state == "success" and tries == 1:
        row.outcome = "success (no retry happened)"
    got = tally(lines, truth)
    row.missing, row.duplicates = got.missing, got.duplicates
    row.malformed, row.unknown, row.forged_keys = got.malformed, got.unknown, got.forged_keys
    row.key_bytes = key_bytes(
        api_key,
        [*artifacts.task_logs.values(), *artifacts.service_logs.values(), json.dumps(artifacts.xcom), *lines],
    )
    xcom = artifacts.xcom.get("value") if isinstance(artifacts.xcom, dict) else None
    summary = json.loads(xcom) if isinstance(xcom, str) else xcom
    row.summary = summary if isinstance(summary, dict) else None
    row.message = (
        f"killed the task process after {killed['lines']} events had arrived" if killed else "task process not found"
    )
    if not killed:
        row.problems.append("the task process was not found to kill")
    if state != "success":
        row.problems.append(f"the run ended {state}")
    elif tries < 2:
        row.problems.append("the kill did not fail the first try")
    if row.summary is not None and not row.summary.get("resumed_after"):
        row.problems.append(f"the retry did not resume from a checkpoint: {row.summary}")
    _judge(Scenario(SIGKILL_SCENARIO, "Worker"), row, got, len(truth))
    # _judge adds the success check in its own words; keep the first explanation only.
    row.problems = list(dict.fromkeys(row.problems))
    return row, artifacts


def _kill_task_mid_window(syslog: SyslogNg, scheduler_pid: int, timeout: float) -> dict[str, int]:
    """SIGKILL the task process once three pages reached the receiver, in the pause before the next page.

    The DAG paces its requests (its share of the API budget: one every few seconds), so two seconds after a page
    arrived the task has written that page's checkpoint and waits for the next request. A kill in the instant
    between handing a page over and writing its checkpoint would re-send two pages (see the notes in docs/delivery.md).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and syslog.line_count() < 3 * PAGE_SIZE:
        time.sleep(0.1)
    time.sleep(2)
    while time.monotonic() < deadline:
        for process in task_runner_processes(scheduler_pid):
            lines = syslog.line_count()
            process.send_signal(signal.SIGKILL)
            return {"pid": process.pid, "lines": lines}
        time.sleep(0.1)
    return {}


# --- the table ----------------------------------------------------------------------------------------------------


def _count(value: int | None, after_fix: bool, failed: bool) -> str:
    if value is None:
        return "n/a (not delivered until fixed)" if failed else "n/a"
    return f"{value} after the fix" if after_fix else str(value)


def format_table(rows: list[Row]) -> str:
    """The matrix as a Markdown table (scenario, outcome, missing, duplicates, time)."""
    lines = [
        "| # | scenario | transport | outcome | missing | duplicates (bound) | key bytes | time | bounds met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, row in enumerate(rows, 1):
        outcome = row.outcome
        if row.expected == "failed" and row.message:
            outcome += f": “{_shorten(row.message, 190)}”"
            if row.after_fix:
                outcome += f"; after the fix: {row.after_fix}"
        elif row.outcome.startswith("success after") and row.message:
            outcome += f" (attempt 1: “{_shorten(row.message, 110)}”)"
        elif row.scenario == SIGKILL_SCENARIO and row.message:
            outcome += f" ({row.message})"
        fixed = bool(row.after_fix)
        failed = row.outcome.startswith("failed")
        missing = _count(row.missing, fixed, failed)
        duplicates = _count(row.duplicates, fixed, failed)
        if row.duplicates is not None:
            duplicates += f" (≤ {row.duplicate_bound})"
        verdict = "yes" if row.meets_bounds else "**NO**: " + "; ".join(row.problems)
        if row.known_defect:
            verdict += " (known limitation, see below the table)"
        cells = [
            str(index),
            row.scenario,
            row.transport.upper(),
            outcome,
            missing,
            duplicates,
            str(row.key_bytes),
            f"{row.seconds:.0f} s",
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in [*cells, verdict]) + " |")
    return "\n".join(lines)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
