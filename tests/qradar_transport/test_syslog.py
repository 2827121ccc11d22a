"""Unit tests for syslog framing: byte-exact headers, octet counting, time zones, host name validation."""

from __future__ import annotations

import pytest

from airflow_provider_atlassian_qradar.qradar_transport.syslog import SyslogFormatter, validate_hostname

# Example (a) of the reference: 2026-01-01T12:00:00.123Z, host app01.example.com, PRI <110>.
EVENT_MS = 1767268800123
LEEF = (
    "LEEF:2.0|ExampleCo|ExampleApp|4.2.0|user.login|x09|devTime=1767268800123\tcat=success\tsev=3"
    "\tusrName=alice@example.com\tsrc=203.0.113.10\turl=https://app.example.com/login?next=/admin"
    "\tuserAgent=Mozilla/5.0\\r\\nLEEF:2.0|Fake|X|1|user.login|x09|usrName=root"
)


class TestSyslogFormatter:
    def test_reference_example_is_250_bytes(self):
        assert len(LEEF.encode()) == 250

    def test_rfc5424_lf_is_byte_exact(self):
        formatter = SyslogFormatter(hostname="app01.example.com")
        frame = formatter.frame(LEEF, EVENT_MS)
        assert frame == b"<110>1 2026-01-01T12:00:00.123Z app01.example.com " + LEEF.encode() + b"\n"
        assert len(frame) == 300 + 1

    def test_rfc3164_lf_is_byte_exact(self):
        formatter = SyslogFormatter("rfc3164", hostname="app01.example.com")
        frame = formatter.frame(LEEF, EVENT_MS)
        assert frame == b"<110>Jan  1 12:00:00 app01.example.com " + LEEF.encode() + b"\n"
        assert len(frame) == 289 + 1

    def test_rfc3164_two_digit_day_is_not_padded(self):
        formatter = SyslogFormatter("rfc3164", hostname="h")
        assert formatter.frame("LEEF:x", EVENT_MS + 9 * 86_400_000).startswith(b"<110>Jan 10 12:00:00 h ")

    def test_octet_counting_prefixes_the_length_and_has_no_lf(self):
        formatter = SyslogFormatter(hostname="app01.example.com", framing="octet-counting")
        frame = formatter.frame(LEEF, EVENT_MS)
        assert frame == b"300 <110>1 2026-01-01T12:00:00.123Z app01.example.com " + LEEF.encode()

    def test_octet_count_is_bytes_not_characters(self):
        formatter = SyslogFormatter(hostname="h", framing="octet-counting")
        frame = formatter.frame("LEEF:Zürich", EVENT_MS)
        length, _, message = frame.partition(b" ")
        assert int(length) == len(message) and len(message) != len(message.decode())

    def test_message_is_unframed(self):
        formatter = SyslogFormatter(hostname="h", framing="octet-counting")
        assert formatter.message("LEEF:x", EVENT_MS) == b"<110>1 2026-01-01T12:00:00.123Z h LEEF:x"

    @pytest.mark.parametrize(
        ("time_zone", "event_ms", "expected"),
        [
            ("Europe/Berlin", EVENT_MS, "2026-01-01T13:00:00.123+01:00"),
            ("Europe/Berlin", 1782907200007, "2026-07-01T14:00:00.007+02:00"),  # summer time
            ("America/New_York", EVENT_MS, "2026-01-01T07:00:00.123-05:00"),
            ("Asia/Kolkata", EVENT_MS, "2026-01-01T17:30:00.123+05:30"),
            ("Etc/UTC", EVENT_MS, "2026-01-01T12:00:00.123Z"),
        ],
    )
    def test_rfc5424_time_zones(self, time_zone, event_ms, expected):
        formatter = SyslogFormatter(hostname="h", time_zone=time_zone)
        assert formatter.frame("LEEF:x", event_ms) == f"<110>1 {expected} h LEEF:x\n".encode()

    def test_rfc3164_uses_local_time_of_the_zone(self):
        formatter = SyslogFormatter("rfc3164", hostname="h", time_zone="America/New_York")
        assert formatter.frame("LEEF:x", EVENT_MS) == b"<110>Jan  1 07:00:00 h LEEF:x\n"

    def test_millisecond_cache_does_not_leak_between_events(self):
        formatter = SyslogFormatter(hostname="h")
        frames = [formatter.frame("L", ms) for ms in (EVENT_MS, EVENT_MS + 1, EVENT_MS + 877, EVENT_MS + 1000)]
        stamps = [frame.split(b" ")[1] for frame in frames]
        assert stamps == [
            b"2026-01-01T12:00:00.123Z",
            b"2026-01-01T12:00:00.124Z",
            b"2026-01-01T12:00:01.000Z",
            b"2026-01-01T12:00:01.123Z",
        ]

    def test_none_means_now(self):
        frame = SyslogFormatter(hostname="h").frame("L", None)
        assert frame.startswith(b"<110>1 20") and frame.endswith(b"Z h L\n")

    def test_pri_from_facility_and_severity(self):
        assert SyslogFormatter(hostname="h", facility=4, severity=2).frame("L", EVENT_MS).startswith(b"<34>1 ")

    @pytest.mark.parametrize(
        ("syslog_format", "framing", "time_zone"),
        [
            ("rfc5424", "lf", "UTC"),
            ("rfc5424", "lf", "Europe/Berlin"),
            ("rfc3164", "lf", "UTC"),
            ("rfc5424", "octet-counting", "UTC"),
            ("rfc3164", "octet-counting", "America/New_York"),
        ],
    )
    def test_overhead_bounds_every_frame(self, syslog_format, framing, time_zone):
        formatter = SyslogFormatter(syslog_format, hostname="app01.example.com", framing=framing, time_zone=time_zone)
        overhead = formatter.overhead_bytes()
        for line in ("L", LEEF, "L" * 4000):
            added = len(formatter.frame(line, EVENT_MS)) - len(line.encode())
            assert added <= overhead
            if framing == "lf":
                assert added == overhead  # fixed-width header: exact for LF framing

    @pytest.mark.parametrize("line", ["LEEF:a\nLEEF:b", "LEEF:a\rb", "LEEF:a\r\n"])
    def test_cr_or_lf_in_the_line_is_refused(self, line):
        with pytest.raises(ValueError, match="CR or LF"):
            SyslogFormatter(hostname="h").frame(line, EVENT_MS)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"syslog_format": "rfc5425"}, "rfc5424, rfc3164"),
            ({"framing": "nul"}, "lf, octet-counting"),
            ({"time_zone": "Mars/Olympus"}, "IANA name"),
            ({"facility": 24}, "0-23"),
            ({"severity": 8}, "0-7"),
        ],
    )
    def test_bad_settings_name_the_allowed_values(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            SyslogFormatter(hostname="h", **kwargs)


class TestValidateHostname:
    @pytest.mark.parametrize("hostname", ["Atlassian-AuditLogs", "app01.example.com", "10.1.2.3", "a", "x" * 255])
    def test_valid(self, hostname):
        assert validate_hostname(hostname) == hostname

    @pytest.mark.parametrize(
        ("hostname", "message"),
        [
            ("", "is empty"),
            ("Atlassian Audit", "printable ASCII without spaces"),
            ("zürich-host", "printable ASCII without spaces"),
            ("tab\there", "printable ASCII without spaces"),
            ("x" * 256, "at most 255"),
        ],
    )
    def test_invalid_names_the_fix(self, hostname, message):
        with pytest.raises(ValueError, match=message):
            validate_hostname(hostname)

    def test_formatter_validates(self):
        with pytest.raises(ValueError, match="log_source_identifier"):
            SyslogFormatter(hostname="has space")
