"""Syslog over UDP: one datagram per event, no delivery signal."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable

from airflow_provider_atlassian_qradar.qradar_transport.sender import QRadarDeliveryError, Record, SyslogSender
from airflow_provider_atlassian_qradar.qradar_transport.syslog import SyslogFormatter

log = logging.getLogger(__name__)


class UdpSender(SyslogSender):
    """
    Send one syslog datagram per event (no framing: the datagram is the message).

    .. warning:: UDP gives no delivery signal. Events are lost silently when the network or QRadar drops
       datagrams, and QRadar may truncate long ones. Prefer TCP or TLS.

    :param host: QRadar event collector host name or IP.
    :param port: syslog UDP port (514 by default).
    :param formatter: the syslog header to apply (its framing is ignored).
    """

    #: The warning about UDP is logged once per process, not once per task.
    _warned = False

    def __init__(self, host: str, port: int, formatter: SyslogFormatter) -> None:
        super().__init__(host, port, formatter)

    def open(self) -> None:
        """Resolve the host and create a connected UDP socket."""
        if self._sock is not None:
            return
        if not UdpSender._warned:
            log.warning("sending to QRadar over UDP: datagrams can be lost without any error; prefer tcp or tls")
            UdpSender._warned = True
        try:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise QRadarDeliveryError(self.unresolvable(exc)) from exc
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
        self._sock = sock

    def close(self) -> None:
        """Close the socket."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def send(self, records: Iterable[Record]) -> int:
        """
        Send one datagram per event.

        :return: number of datagrams handed to the kernel by this call.
        :raises QRadarDeliveryError: when the kernel reports the port unreachable (nothing listens on it).
        """
        self.open()
        assert self._sock is not None
        sock_send, message = self._sock.send, self.formatter.message
        handed = 0
        try:
            for line, event_time_ms in records:
                sock_send(message(line, event_time_ms))
                handed += 1
        except ConnectionRefusedError as exc:
            raise QRadarDeliveryError(
                f"QRadar at {self.address} answered 'port unreachable' to UDP: no log source listens "
                f"there; check the port and protocol (events sent so far may be lost)"
            ) from exc
        finally:
            self.delivered += handed
        return handed
