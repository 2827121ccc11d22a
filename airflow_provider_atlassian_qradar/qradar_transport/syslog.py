"""Syslog framing for LEEF lines: the header QRadar routes by, and LF or octet-counting framing.

Pure code: no Airflow import. The LEEF line arrives already encoded and escaped by the LEEF encoder;
this module only puts the syslog header in front of it and frames it for a stream or datagram transport.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SYSLOG_FORMATS = ("rfc5424", "rfc3164")
FRAMINGS = ("lf", "octet-counting")

#: Facility 13 is "log audit" (RFC 5424 table 1); severity 6 is "informational".
DEFAULT_FACILITY = 13
DEFAULT_SEVERITY = 6
#: Upper bound used for the octet-counting prefix in :meth:`SyslogFormatter.overhead_bytes`:
#: frames up to 99,999 bytes, i.e. a 5-digit length plus one space.
MAX_OCTET_COUNTED_FRAME_BYTES = 99_999

_UTC_ZONE_NAMES = frozenset({"utc", "z", "etc/utc", "etc/uct", "uct", "etc/zulu", "zulu", "universal"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MAX_HOSTNAME_CHARS = 255


def validate_hostname(hostname: str) -> str:
    """
    Check a syslog HOSTNAME (QRadar's log source identifier) and return it unchanged.

    RFC 5424 allows printable US-ASCII without spaces, 1 to 255 characters; QRadar routes the event to the
    log source whose identifier equals this value.

    :param hostname: the log source identifier to write into the syslog header.
    :raises ValueError: naming what to change when the value is empty, too long or has forbidden characters.
    """
    if not isinstance(hostname, str) or not hostname:
        raise ValueError(
            "log_source_identifier is empty: set it to the Log Source Identifier configured in QRadar "
            "(e.g. Atlassian-AuditLogs or this worker's host name)"
        )
    if len(hostname) > _MAX_HOSTNAME_CHARS:
        raise ValueError(
            f"log_source_identifier is {len(hostname)} characters long: syslog allows at most "
            f"{_MAX_HOSTNAME_CHARS}; use a shorter identifier"
        )
    bad = sorted({ch for ch in hostname if not 33 <= ord(ch) <= 126})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        raise ValueError(
            f"log_source_identifier {hostname!r} contains {shown}: syslog host names are printable ASCII "
            "without spaces; use letters, digits, '.', '-' or '_' (e.g. Atlassian-AuditLogs)"
        )
    return hostname


def _resolve_zone(time_zone: str) -> tuple[timezone | ZoneInfo, bool]:
    if time_zone.strip().lower() in _UTC_ZONE_NAMES:
        return timezone.utc, True
    try:
        return ZoneInfo(time_zone), False
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time_zone {time_zone!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'") from exc


class SyslogFormatter:
    """
    Put a syslog header in front of LEEF lines and frame them for TCP, TLS or UDP.

    RFC 5424 form, as IBM documents it for LEEF (no APP-NAME/PROCID/MSGID/SD)::

        <PRI>1 2026-01-01T12:00:00.123Z HOSTNAME LEEF:2.0|...

    RFC 3164 form (day padded with a space, local time in ``time_zone``, no TAG)::

        <PRI>Jan  1 12:00:00 HOSTNAME LEEF:2.0|...

    :param syslog_format: ``rfc5424`` (default) or ``rfc3164``.
    :param hostname: the syslog HOSTNAME, i.e. QRadar's log source identifier.
    :param framing: ``lf`` (newline-terminated, default) or ``octet-counting`` (RFC 6587 §3.4.1: ``LEN SP MSG``).
    :param facility: syslog facility 0-23; default 13 (log audit).
    :param severity: syslog severity 0-7; default 6 (informational).
    :param time_zone: IANA zone the header time is written in; ``UTC`` renders as ``Z``.
    """

    def __init__(
        self,
        syslog_format: str = "rfc5424",
        hostname: str = "Atlassian-AuditLogs",
        framing: str = "lf",
        facility: int = DEFAULT_FACILITY,
        severity: int = DEFAULT_SEVERITY,
        time_zone: str = "UTC",
    ) -> None:
        if syslog_format not in SYSLOG_FORMATS:
            raise ValueError(f"unknown syslog_format {syslog_format!r}: use one of {', '.join(SYSLOG_FORMATS)}")
        if framing not in FRAMINGS:
            raise ValueError(f"unknown framing {framing!r}: use one of {', '.join(FRAMINGS)}")
        if not 0 <= facility <= 23:
            raise ValueError(f"syslog facility {facility} is out of range: use 0-23 (13 = log audit)")
        if not 0 <= severity <= 7:
            raise ValueError(f"syslog severity {severity} is out of range: use 0-7 (6 = informational)")
        self.syslog_format = syslog_format
        self.hostname = validate_hostname(hostname)
        self.framing = framing
        self.facility = facility
        self.severity = severity
        self.time_zone = time_zone
        self._zone, self._is_utc = _resolve_zone(time_zone)
        self._pri = f"<{facility * 8 + severity}>"
        # Consecutive events usually share a second: cache the rendered second to keep framing cheap.
        self._cached_second: int | None = None
        self._cached_parts: tuple[str, str] = ("", "")

    def _header_parts(self, second: int) -> tuple[str, str]:
        """Return (text before the milliseconds, text after them) for one epoch second."""
        moment = datetime.fromtimestamp(second, tz=self._zone)
        if self.syslog_format == "rfc3164":
            stamp = f"{_MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S}"
            return f"{self._pri}{stamp} {self.hostname} ", ""
        if self._is_utc:
            offset = "Z"
        else:
            delta = moment.utcoffset() or timedelta(0)
            minutes = int(delta.total_seconds()) // 60
            sign = "+" if minutes >= 0 else "-"
            offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return f"{self._pri}1 {moment:%Y-%m-%dT%H:%M:%S}.", f"{offset} {self.hostname} "

    def header(self, timestamp_ms: int | None) -> str:
        """
        Return the syslog header (with its trailing space) for an event time.

        :param timestamp_ms: event time in epoch milliseconds; ``None`` means now.
        """
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        second, millis = divmod(int(timestamp_ms), 1000)
        if second != self._cached_second:
            self._cached_parts = self._header_parts(second)
            self._cached_second = second
        before, after = self._cached_parts
        if self.syslog_format == "rfc3164":
            return before
        return f"{before}{millis:03d}{after}"

    def message(self, leef_line: str, timestamp_ms: int | None) -> bytes:
        """
        Return the syslog message (header + LEEF line) without framing, as sent in one UDP datagram.

        :param leef_line: one LEEF event, already escaped by the encoder (no CR or LF).
        :param timestamp_ms: event time in epoch milliseconds, written into the header; ``None`` means now.
        :raises ValueError: if the line contains CR or LF, which would split it into two events.
        """
        if "\n" in leef_line or "\r" in leef_line:
            raise ValueError(
                "LEEF line contains a CR or LF: it would be split into two syslog events; "
                "escape the value in the LEEF encoder (\\n, \\r) before framing"
            )
        return (self.header(timestamp_ms) + leef_line).encode("utf-8")

    def frame(self, leef_line: str, timestamp_ms: int | None) -> bytes:
        """
        Return one framed syslog message, ready to write to the socket.

        :param leef_line: one LEEF event, already escaped by the encoder (no CR or LF).
        :param timestamp_ms: event time in epoch milliseconds, written into the header; ``None`` means now.
        :raises ValueError: if the line contains CR or LF, which would split it into two events.
        """
        message = self.message(leef_line, timestamp_ms)
        if self.framing == "lf":
            return message + b"\n"
        return b"%d %s" % (len(message), message)

    def overhead_bytes(self) -> int:
        """
        Return the most bytes the header and framing add to a LEEF line.

        Give the LEEF encoder ``max_frame_bytes - overhead_bytes()`` as its budget. For octet counting the
        length prefix is counted for frames up to :data:`MAX_OCTET_COUNTED_FRAME_BYTES` (5 digits + space).
        """
        host = len(self.hostname.encode("ascii")) + 1  # hostname + the space before LEEF
        if self.syslog_format == "rfc3164":
            header = len(self._pri) + len("Mmm dd HH:mm:ss ") + host
        else:
            stamp = len("2026-01-01T12:00:00.123") + (1 if self._is_utc else len("+00:00"))
            header = len(self._pri) + len("1 ") + stamp + 1 + host
        if self.framing == "lf":
            return header + 1
        return header + len(str(MAX_OCTET_COUNTED_FRAME_BYTES)) + 1
