"""The fault matrix's table: one scenario per injected failure, and the SIGKILL scenario's name."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults.actions import (
    PERSISTENT,
    SECOND_PAGE,
    api_503_and_receiver_restart,
    clear_faults,
    combined_api_storm,
    drop_receiver_briefly,
    front,
    good_server_cert,
    heal_receiver,
    http_503_storm,
    http_date_in,
    malformed_then_odd_pages,
    raise_body_limit,
    restart_receiver,
    resume_receiver,
    set_faults,
    slow_api_for_a_while,
    stop_receiver,
    trust_the_right_ca,
    working_connection,
)
from sandbox.faults.environment import PAGE_SIZE, Hook
from sandbox.faults.hostile_servers import (
    Behaviour,
    echo_authorization,
    gzip_answer,
    gzip_bomb,
    huge_body,
    json_answer,
    redirect,
    trickle,
)


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


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("no fault (reference run)", "API"),
    Scenario(
        "429 x4, Retry-After",
        "API",
        mid_window=set_faults(rate_limit_burst=4, rate_limit_headers="retry-after", retry_after_seconds=0.3),
    ),
    Scenario(
        "429 x4, X-Retry-After",
        "API",
        mid_window=set_faults(rate_limit_burst=4, rate_limit_headers="x-retry-after", retry_after_seconds=0.3),
    ),
    Scenario(
        "429 x3, X-RateLimit-Reset only",
        "API",
        mid_window=set_faults(rate_limit_burst=3, rate_limit_headers="reset-only", retry_after_seconds=0.3),
    ),
    Scenario(
        "429 x3, no header (backoff)", "API", mid_window=set_faults(rate_limit_burst=3, rate_limit_headers="none")
    ),
    Scenario(
        "429 storm outlasting the hook's retries",
        "API",
        atlassian_extra={"max_retries": 2},
        mid_window=set_faults(rate_limit_burst=4, rate_limit_headers="all", retry_after_seconds=0.3),
    ),
    Scenario("500 x3", "API", mid_window=set_faults(server_error_burst=3, server_error_status=500)),
    Scenario("502 x3", "API", mid_window=set_faults(server_error_burst=3, server_error_status=502)),
    Scenario("503 x3", "API", mid_window=set_faults(server_error_burst=3, server_error_status=503)),
    Scenario(
        "503 outlasting the hook's retries",
        "API",
        atlassian_extra={"max_retries": 2},
        mid_window=set_faults(server_error_burst=4, server_error_status=503),
    ),
    Scenario("connection reset mid-body x2", "API", mid_window=set_faults(reset_mid_body=2)),
    Scenario(
        "read timeout (API slower than timeout)",
        "API",
        atlassian_extra={"timeout": 1.5},
        mid_window=slow_api_for_a_while,
    ),
    Scenario("malformed JSON x2", "API", mid_window=set_faults(malformed_json=2)),
    Scenario("empty page with a non-null cursor", "API", mid_window=set_faults(empty_page_with_cursor=1)),
    Scenario("page repeating the previous page", "API", mid_window=set_faults(repeat_previous_page=1)),
    Scenario("cursor rejected (400 ADMIN-400-1)", "API", mid_window=set_faults(reject_cursor=1)),
    Scenario(
        "links.next to a foreign host",
        "API",
        expect="failed",
        faults={"foreign_next_link": PERSISTENT},
        fix=clear_faults,
        message=(r"refusing to follow links\.next to https://evil\.example\.net", r"update the connection host"),
    ),
    Scenario(
        "API key revoked mid-window (401)",
        "API",
        expect="failed",
        faults={"revoke_key_after": 4},  # /event-actions + 3 pages, then 401 for good
        fix=set_faults(revoke_key_after=None),
        message=(r"401 ADMIN-401-1", r"create a new organization API key .* update the connection's password"),
    ),
    Scenario(
        "receiver not listening at start",
        "Receiver",
        qradar_extra={"max_reconnects": 2},
        before_first=stop_receiver,
        between_attempts=resume_receiver,
    ),
    Scenario(
        "connection dropped mid-window, back in 3 s",
        "Receiver",
        mid_window=drop_receiver_briefly,
    ),
    Scenario(
        "connection dropped mid-window beyond the reconnect budget",
        "Receiver",
        qradar_extra={"max_reconnects": 1},
        mid_window=stop_receiver,
        between_attempts=resume_receiver,
    ),
    Scenario("receiver restarted mid-window (TCP)", "Receiver", mid_window=restart_receiver),
    Scenario(
        "receiver restarted mid-window (TLS)",
        "Receiver",
        transport="tls",
        mid_window=restart_receiver,
    ),
    Scenario(
        "TLS certificate not matching the host",
        "Receiver",
        transport="tls",
        expect="failed",
        server_cert="wrong_host",
        fix=good_server_cert,
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
        fix=good_server_cert,
        message=(r"TLS verification of QRadar .* failed: certificate has expired", r"renew an expired certificate"),
    ),
    Scenario(
        "TLS certificate untrusted (other CA)",
        "Receiver",
        transport="tls",
        expect="failed",
        trusted_ca=False,
        fix=trust_the_right_ca,
        message=(
            r"TLS verification of QRadar .* failed: (unable to get local issuer|self-signed certificate in)",
            r"Set ca_cert to the CA that issued it",
        ),
    ),
    Scenario("HTTP Receiver 503 x2 then 200", "Receiver", transport="http", http_responses=(503, 503)),
    Scenario(
        "HTTP Receiver 503 outlasting the sender's retries", "Receiver", transport="http", mid_window=http_503_storm
    ),
    Scenario("HTTP Receiver 413 (body limit 48 KiB)", "Receiver", transport="http", max_body_bytes=48 * 1024),
    Scenario(
        "HTTPS Receiver certificate untrusted",
        "Receiver",
        transport="https",
        expect="failed",
        trusted_ca=False,
        fix=trust_the_right_ca,
        message=(
            r"TLS with the QRadar HTTP Receiver at https://127\.0\.0\.1:\d+/ failed",
            r"Set ca_cert to the CA that issued the receiver's certificate",
        ),
    ),
    Scenario("429 + 503 + reset mid-body together", "Combined", mid_window=combined_api_storm),
    Scenario(
        "malformed JSON + repeated page + empty page + rejected cursor",
        "Combined",
        mid_window=malformed_then_odd_pages,
    ),
    Scenario(
        "API 503 burst + receiver restart (TCP)",
        "Combined",
        mid_window=api_503_and_receiver_restart,
    ),
    # Hostile and broken endpoints (issue 13): real loopback servers of our own, in front of the simulator.
    Scenario(
        "API key with a trailing newline",
        "Hostile",
        expect="failed",
        atlassian_fields={"password_suffix": "\n"},
        fix=working_connection,
        message=(r"the API key \(password field\) has leading or trailing whitespace", r"paste it again"),
    ),
    Scenario(
        "API host plain http, not loopback",
        "Hostile",
        expect="failed",
        atlassian_fields={"host": "http://audit-proxy.example.com"},
        fix=working_connection,
        message=(r"is plain http to a host that is not loopback", r'"allow_insecure_http": true'),
    ),
    Scenario(
        "API org id with ../",
        "Hostile",
        expect="failed",
        atlassian_fields={"login": "../other-org"},
        fix=working_connection,
        message=(r"the Organization ID \(login field\) '\.\./other-org' is not an organization id",),
    ),
    Scenario(
        "API answers 302 to another origin",
        "Hostile",
        expect="failed",
        front=front(lambda: redirect("https://evil.example.net/admin/v1/orgs/x/events-stream?cursor=1")),
        fix=working_connection,
        message=(r"302 redirecting to https://evil\.example\.net: API calls never follow redirects",),
    ),
    Scenario(
        "API gzip bomb (1 MB -> 1 GiB)",
        "Hostile",
        expect="failed",
        front=front(lambda: gzip_answer(gzip_bomb(1 << 30), already_compressed=True)),
        fix=working_connection,
        message=(r"decompresses to more than 33,554,432 bytes", r"'max_response_bytes'"),
    ),
    Scenario(
        "API 50 MiB body",
        "Hostile",
        expect="failed",
        front=front(lambda: huge_body(50 * 1024 * 1024, declared=False)),
        fix=working_connection,
        message=(r"is more than 33,554,432 bytes",),
    ),
    Scenario(
        "API trickling 1 byte / 3 s (headers), 2 s deadline",
        "Hostile",
        atlassian_extra={"request_deadline": 2, "timeout": 10},
        front=front(lambda: trickle("headers", 3.0, threading.Event())),
    ),
    Scenario(
        "API trickling 1 byte / 3 s (body), 2 s deadline",
        "Hostile",
        atlassian_extra={"request_deadline": 2, "timeout": 10},
        front=front(lambda: trickle("body", 3.0, threading.Event())),
    ),
    Scenario(
        "API echoing the key in a 401 body",
        "Hostile",
        expect="failed",
        front=front(lambda: echo_authorization(401)),
        fix=working_connection,
        message=(r"Atlassian returned 401 ADMIN-401-1", r"\*\*\*"),
    ),
    Scenario(
        "API echoing the key in 500 bodies x2",
        "Hostile",
        front=front(lambda: echo_authorization(500), times=2),
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
        front=lambda: {SECOND_PAGE: json_answer(429, {}, {"Retry-After": http_date_in(2.0)})},
    ),
    Scenario(
        "receiver accepts TCP but stops reading",
        "Hostile",
        stalling_receiver=True,
        qradar_extra={"write_timeout": 1, "max_reconnects": 1},
        between_attempts=heal_receiver,
    ),
    Scenario(
        "HTTP Receiver 413 for a single event",
        "Hostile",
        transport="http",
        expect="failed",
        max_body_bytes=200,
        fix=raise_body_limit,
        message=(r"rejected a single event of \d+ bytes as too large \(413\)", r"lower max_frame_bytes"),
    ),
)


SIGKILL_SCENARIO = "task process SIGKILLed mid-window, retried by Airflow"
