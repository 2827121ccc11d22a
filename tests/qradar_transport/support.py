"""Helpers shared by the sender tests."""

from __future__ import annotations

from airflow_provider_atlassian_qradar.qradar_transport import SyslogFormatter

HOSTNAME = "Atlassian-AuditLogs"
FAST_BACKOFF = (0.05, 0.5)


def _event_ids(lines: list[str]) -> list[str]:
    return [line.split("\tid=", 1)[1].split("\t", 1)[0] for line in lines]


def _expected_lines(formatter: SyslogFormatter, records: list[tuple[str, int]]) -> list[str]:
    return [formatter.message(line, event_ms).decode("utf-8") for line, event_ms in records]
