"""Fixtures shared by the operator's tests: a real syslog-ng as the QRadar connection's receiver."""

from __future__ import annotations

import pytest

from sandbox.connections import QRADAR_CONN_VAR, qradar_connection
from sandbox.receivers import SyslogNg, require_syslog_ng


@pytest.fixture
def syslog_ng(tmp_path, monkeypatch):
    require_syslog_ng()
    with SyslogNg(tmp_path, "tcp") as receiver:
        monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(receiver.port, batch_size=100, max_reconnects=2))
        yield receiver
