"""
Send (pure, no Airflow): hand LEEF lines to QRadar over syslog TCP, TLS or UDP, or its HTTP Receiver.

``syslog`` frames a line, ``sender`` is what every sender shares, ``tcp`` (with ``receipts``), ``tls``, ``udp``
and ``http`` are one transport each. ``hooks.qradar.QRadarHook`` builds the right sender from a connection.
"""

from __future__ import annotations

from airflow_provider_atlassian_qradar.qradar_transport.http import HttpSender
from airflow_provider_atlassian_qradar.qradar_transport.receipts import (
    DEFAULT_RECEIVER_BUFFER_BYTES,
    MAX_UNCONFIRMED_BYTES,
)
from airflow_provider_atlassian_qradar.qradar_transport.sender import (
    EventSender,
    QRadarDeliveryError,
    Record,
    SyslogSender,
)
from airflow_provider_atlassian_qradar.qradar_transport.syslog import (
    FRAMINGS,
    SYSLOG_FORMATS,
    SyslogFormatter,
    validate_hostname,
)
from airflow_provider_atlassian_qradar.qradar_transport.tcp import TcpSender
from airflow_provider_atlassian_qradar.qradar_transport.tls import (
    TlsSender,
    build_ssl_context,
    describe_server_certificate,
)
from airflow_provider_atlassian_qradar.qradar_transport.udp import UdpSender

__all__ = [
    "DEFAULT_RECEIVER_BUFFER_BYTES",
    "FRAMINGS",
    "MAX_UNCONFIRMED_BYTES",
    "SYSLOG_FORMATS",
    "EventSender",
    "HttpSender",
    "QRadarDeliveryError",
    "Record",
    "SyslogFormatter",
    "SyslogSender",
    "TcpSender",
    "TlsSender",
    "UdpSender",
    "build_ssl_context",
    "describe_server_certificate",
    "validate_hostname",
]
