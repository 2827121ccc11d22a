"""UdpSender against syslog-ng: byte-identical datagrams, port unreachable."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_atlassian_qradar.qradar_transport import QRadarDeliveryError, SyslogFormatter, UdpSender
from sandbox.leef_samples import make_leef_records
from sandbox.receivers import SyslogNg, free_port
from tests.qradar_transport.support import HOSTNAME, _expected_lines

pytestmark = pytest.mark.timeout(120)


class TestUdpSender:
    def test_100k_events_arrive_byte_identical_in_order(self, tmp_path, syslog_ng_binary, records_100k, caplog):
        # UDP has no flow control: on this box the kernel caps syslog-ng's so-rcvbuf at net.core.rmem_max
        # (4 MiB), and an unpaced burst of 100k datagrams overflowed it (~6% lost, invisible to syslog-ng's
        # counters). The test therefore sends in slices and waits for the receiver between them; the sender's
        # framing and ordering are what is checked, not the receiver's capacity.
        formatter = SyslogFormatter(hostname=HOSTNAME, framing="octet-counting")  # ignored for UDP
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.qradar_transport")
        UdpSender._warned = False
        with SyslogNg(tmp_path, "udp") as receiver:
            with UdpSender("127.0.0.1", receiver.port, formatter) as sender:
                for start in range(0, 100_000, 2_000):
                    sender.send(records_100k[start : start + 2_000])
                    receiver.wait_for_lines(start + 2_000, timeout=10, settle=0.0)
            lines = receiver.wait_for_lines(100_000, timeout=30)
        assert len(lines) == 100_000
        assert lines == _expected_lines(formatter, records_100k)
        assert sender.delivered == 100_000
        assert caplog.text.count("datagrams can be lost without any error") == 1

    def test_port_unreachable_is_reported(self):
        sender = UdpSender("127.0.0.1", free_port(__import__("socket").SOCK_DGRAM), SyslogFormatter(hostname="h"))
        with sender, pytest.raises(QRadarDeliveryError, match="port unreachable"):
            for _ in range(50):
                sender.send(make_leef_records(1))
                time.sleep(0.01)
