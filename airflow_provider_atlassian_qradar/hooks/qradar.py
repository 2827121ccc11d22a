"""Hook for IBM QRadar: turns an Airflow connection into a syslog (TCP/TLS/UDP) or HTTP Receiver event sender."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.sdk import BaseHook

from airflow_provider_atlassian_qradar.connection_fields import (
    QRADAR_EXTRAS,
    QRADAR_FORM,
    ConnectionConfigError,
    read_extras,
)
from airflow_provider_atlassian_qradar.qradar_transport import (
    EventSender,
    HttpSender,
    QRadarDeliveryError,
    SyslogFormatter,
    TcpSender,
    TlsSender,
    UdpSender,
    build_ssl_context,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

try:
    from airflow.sdk.log import mask_secret
except ImportError:  # pragma: no cover - older task SDKs
    mask_secret = None  # type: ignore[assignment]

#: The operator catches the sender's error through the hook, never from the transport package directly.
__all__ = ["QRadarDeliveryError", "QRadarHook", "QRadarSettings"]

DEFAULT_PORTS = {"tcp": 514, "udp": 514, "tls": 6514, "http": 12469, "https": 12469}
#: batch_size has no single default (its extra's default is None): it depends on the protocol.
DEFAULT_BATCH_SIZE = {"tcp": 200, "tls": 200, "udp": 1, "http": 500, "https": 500}
_EXTRAS = {extra.name: extra for extra in QRADAR_EXTRAS}


@dataclass(frozen=True)
class QRadarSettings:
    """
    One QRadar connection, resolved and validated: its fields, its extras and the hook's overrides.

    Defaults and allowed values come from
    :data:`~airflow_provider_atlassian_qradar.connection_fields.QRADAR_EXTRAS`; an extra that is missing, ``null``
    or empty takes its default. The client key and its passphrase are left out of ``repr``.
    """

    protocol: str
    host: str
    port: int
    framing: str
    syslog_format: str
    log_source_identifier: str
    max_frame_bytes: int
    time_zone: str
    ca_cert: str | None
    client_cert: str | None
    client_key: str | None = field(repr=False)
    key_passphrase: str | None = field(repr=False)
    verify: bool
    connect_timeout: float
    write_timeout: float
    batch_size: int
    max_reconnects: int
    receiver_buffer_bytes: int
    confirm_delivery: bool

    @classmethod
    def from_connection(
        cls,
        conn: Connection,
        conn_id: str,
        *,
        log_source_identifier: str | None = None,
        max_frame_bytes: int | None = None,
        time_zone: str | None = None,
    ) -> QRadarSettings:
        """
        Read the settings from a connection; the keyword arguments override its extras when given.

        :raises ConnectionConfigError: naming the field that is missing or cannot be used.
        """
        extra = read_extras(QRADAR_EXTRAS, conn.extra_dejson, conn_id)
        protocol = extra["protocol"]
        host = (conn.host or "").strip()
        if not host:
            raise ConnectionConfigError(f"connection {conn_id!r} has no host: set the QRadar event collector host")
        if "://" in host:
            raise ConnectionConfigError(
                f"connection {conn_id!r}: host {host!r} must be a host name or IP, not a URL; "
                "choose http or https with the protocol extra"
            )
        if max_frame_bytes:
            extra["max_frame_bytes"] = _EXTRAS["max_frame_bytes"].parse(max_frame_bytes, conn_id)
        return cls(
            protocol=protocol,
            host=host,
            port=int(conn.port or DEFAULT_PORTS[protocol]),
            framing=extra["framing"],
            syslog_format=extra["syslog_format"],
            log_source_identifier=log_source_identifier or extra["log_source_identifier"],
            max_frame_bytes=extra["max_frame_bytes"],
            time_zone=time_zone or extra["time_zone"],
            ca_cert=extra["ca_cert"],
            client_cert=extra["client_cert"],
            client_key=extra["client_key"],
            key_passphrase=conn.password or None,
            verify=extra["verify"],
            connect_timeout=extra["connect_timeout"],
            write_timeout=extra["write_timeout"],
            batch_size=extra["batch_size"] or DEFAULT_BATCH_SIZE[protocol],
            max_reconnects=extra["max_reconnects"],
            receiver_buffer_bytes=extra["receiver_buffer_bytes"],
            confirm_delivery=extra["confirm_delivery"],
        )


class QRadarHook(BaseHook):
    """
    Deliver LEEF events to IBM QRadar over syslog (TCP, TLS, UDP) or its HTTP Receiver.

    Connection: host and port of the event collector (the port defaults per protocol: tcp/udp 514, tls 6514,
    http/https 12469), password = passphrase of ``client_key`` (optional), and the extras of
    :data:`~airflow_provider_atlassian_qradar.connection_fields.QRADAR_EXTRAS`, read into :class:`QRadarSettings`.

    Nothing is read or connected in ``__init__``; the connection is read on first use.

    :param qradar_conn_id: the Airflow connection id.
    :param log_source_identifier: overrides the connection's ``log_source_identifier`` (syslog HOSTNAME).
    :param max_frame_bytes: overrides the connection's ``max_frame_bytes``.
    :param time_zone: overrides the time zone of the syslog header time (default UTC).
    """

    conn_name_attr = "qradar_conn_id"
    default_conn_name = "qradar_default"
    conn_type = "qradar"
    hook_name = "IBM QRadar"

    def __init__(
        self,
        qradar_conn_id: str = default_conn_name,
        *,
        log_source_identifier: str | None = None,
        max_frame_bytes: int | None = None,
        time_zone: str | None = None,
    ) -> None:
        super().__init__()
        self.qradar_conn_id = qradar_conn_id
        self._log_source_identifier_override = log_source_identifier
        self._max_frame_bytes_override = max_frame_bytes
        self._time_zone_override = time_zone

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: the same behaviour as declared in ``get_provider_info``."""
        return dict(QRADAR_FORM)

    # -- settings -------------------------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> QRadarSettings:
        """The resolved settings (connection + overrides + defaults), validated; secrets are registered masked.

        :raises ConnectionConfigError: naming the field that is missing or cannot be used.
        """
        settings = QRadarSettings.from_connection(
            self.get_connection(self.qradar_conn_id),
            self.qradar_conn_id,
            log_source_identifier=self._log_source_identifier_override,
            max_frame_bytes=self._max_frame_bytes_override,
            time_zone=self._time_zone_override,
        )
        for secret in (settings.client_key, settings.key_passphrase):
            if secret and mask_secret is not None:
                mask_secret(secret)
        return settings

    @property
    def protocol(self) -> str:
        """tcp, tls, udp, http or https."""
        return self.settings.protocol

    @property
    def host(self) -> str:
        """QRadar event collector host."""
        return self.settings.host

    @property
    def port(self) -> int:
        """Port (connection value or the protocol default)."""
        return self.settings.port

    @property
    def framing(self) -> str:
        """lf or octet-counting (syslog over tcp/tls)."""
        return self.settings.framing

    @property
    def syslog_format(self) -> str:
        """rfc5424 or rfc3164."""
        return self.settings.syslog_format

    @property
    def log_source_identifier(self) -> str:
        """The syslog HOSTNAME that QRadar routes by."""
        return self.settings.log_source_identifier

    @property
    def max_frame_bytes(self) -> int:
        """Largest frame (header + LEEF + framing) to send."""
        return self.settings.max_frame_bytes

    @property
    def verify(self) -> bool:
        """Whether the server certificate is verified (tls/https)."""
        return self.settings.verify

    @property
    def batch_size(self) -> int:
        """Events per write (tcp/tls) or per POST (http/https)."""
        return self.settings.batch_size

    @property
    def time_zone(self) -> str:
        """IANA time zone of the syslog header time (default UTC)."""
        return self.settings.time_zone

    def validate(self) -> None:
        """
        Resolve and check every setting without any network I/O (protocol, framing, identifier, certificates).

        :raises ConnectionConfigError: naming the setting and the allowed values or the fix (a ``ValueError``).
        """
        try:
            if self.protocol in ("tls", "https"):
                self.get_ssl_context()
            if self.protocol not in ("http", "https"):
                self.get_formatter()
        except ConnectionConfigError:
            raise
        except ValueError as err:  # a certificate or identifier that cannot work: the messages hold no secret
            raise ConnectionConfigError(f"connection {self.qradar_conn_id!r}: {err}") from None

    def describe(self) -> str:
        """A one-line, secret-free description for logs, e.g. ``tls://qradar-ec:6514 (log source X, lf)``."""
        if self.protocol in ("http", "https"):
            return f"{self.url} (HTTP Receiver)"
        return (
            f"{self.protocol}://{self.host}:{self.port} (log source {self.log_source_identifier}, "
            f"{self.syslog_format}, {self.framing} framing)"
        )

    @property
    def url(self) -> str:
        """The HTTP Receiver URL (http/https only)."""
        return f"{self.protocol}://{self.host}:{self.port}/"

    def get_formatter(self) -> SyslogFormatter:
        """The syslog formatter for this connection (validates the log source identifier)."""
        return SyslogFormatter(
            syslog_format=self.syslog_format,
            hostname=self.log_source_identifier,
            framing=self.framing,
            time_zone=self.time_zone,
        )

    def leef_budget(self) -> int:
        """Bytes the LEEF encoder may use per event: ``max_frame_bytes`` minus the syslog header and framing."""
        if self.protocol in ("http", "https"):
            return self.max_frame_bytes
        return self.max_frame_bytes - self.get_formatter().overhead_bytes()

    def get_ssl_context(self) -> ssl.SSLContext:
        """The client TLS context (CA pinning, client certificate); warns when verification is turned off."""
        settings = self.settings
        if not settings.verify:
            self.log.warning(
                "TLS certificate verification of QRadar at %s:%s is OFF (verify=false): anyone on the path can "
                "read or alter the audit events; set ca_cert instead",
                self.host,
                self.port,
            )
        return build_ssl_context(
            ca_cert=settings.ca_cert,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
            key_passphrase=settings.key_passphrase,
            verify=settings.verify,
        )

    def get_sender(self) -> EventSender:
        """
        Build the sender for this connection; use it as a context manager.

        :return: a :class:`TcpSender`, :class:`TlsSender`, :class:`UdpSender` or :class:`HttpSender`.
        """
        settings = self.settings
        protocol = self.protocol
        if protocol in ("http", "https"):
            return HttpSender(
                self.url,
                batch_size=self.batch_size,
                timeout=(settings.connect_timeout, settings.write_timeout),
                ssl_context=self.get_ssl_context() if protocol == "https" else None,
            )
        formatter = self.get_formatter()
        if protocol == "udp":
            return UdpSender(self.host, self.port, formatter)
        stream_options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "connect_timeout": settings.connect_timeout,
            "write_timeout": settings.write_timeout,
            "max_reconnects": settings.max_reconnects,
            "receiver_buffer_bytes": settings.receiver_buffer_bytes,
            "confirm_delivery": settings.confirm_delivery,
        }
        if protocol == "tls":
            return TlsSender(self.host, self.port, formatter, ssl_context=self.get_ssl_context(), **stream_options)
        return TcpSender(self.host, self.port, formatter, **stream_options)

    # -- test_connection ------------------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """
        Check that QRadar can be reached, without sending an event.

        tcp: a TCP connect; tls: a TCP connect and TLS handshake (certificate verified); udp: only the host name
        is resolved (UDP has no handshake); http/https: a ``HEAD /`` request, where any HTTP answer counts as
        reachable because the HTTP Receiver only documents POST (and an empty POST could create an event).
        """
        try:
            protocol = self.protocol
            if protocol == "udp":
                socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
                return True, (
                    f"resolved {self.host}; UDP has no handshake, so whether a log source listens on port "
                    f"{self.port} cannot be checked (and UDP can lose events silently)"
                )
            if protocol in ("http", "https"):
                return self._test_http()
            sender = self.get_sender()
            assert isinstance(sender, TcpSender)
            try:
                sender.connect_once().close()
            except OSError as exc:
                return False, sender.explain(exc)
            return True, f"connected to QRadar at {self.host}:{self.port} over {protocol.upper()}"
        except (ValueError, QRadarDeliveryError) as exc:
            return False, str(exc)

    def _test_http(self) -> tuple[bool, str]:
        sender = self.get_sender()
        assert isinstance(sender, HttpSender)
        with sender:
            session = sender._session
            assert session is not None
            try:
                response = session.head(self.url, timeout=sender.timeout, allow_redirects=False)
            except requests.exceptions.SSLError as exc:
                return False, (
                    f"TLS with the QRadar HTTP Receiver at {self.url} failed: {exc}. Set ca_cert to the CA that "
                    "issued its certificate"
                )
            except requests.ConnectionError as exc:
                return False, (
                    f"cannot reach the QRadar HTTP Receiver at {self.url} ({exc}): check host, port (12469 by "
                    "default), that the log source is enabled, and the firewall"
                )
            except requests.Timeout:
                return False, f"the QRadar HTTP Receiver at {self.url} did not answer in time: check the firewall"
        return True, f"the QRadar HTTP Receiver at {self.url} answered (HTTP {response.status_code} to HEAD /)"
