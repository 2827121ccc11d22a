"""Fixtures shared by the operator's tests: a real syslog-ng as the QRadar connection's receiver."""

from __future__ import annotations

import json

import pytest

from sandbox.receivers import SyslogNg, require_syslog_ng


@pytest.fixture
def syslog_ng(tmp_path, monkeypatch):
    require_syslog_ng()
    with SyslogNg(tmp_path, "tcp") as receiver:
        conn = {
            "conn_type": "qradar",
            "host": "127.0.0.1",
            "port": receiver.port,
            "extra": {"protocol": "tcp", "batch_size": 100, "max_reconnects": 2},
        }
        monkeypatch.setenv("AIRFLOW_CONN_QRADAR_DEFAULT", json.dumps(conn))
        yield receiver
