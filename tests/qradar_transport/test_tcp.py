"""TcpSender against syslog-ng on loopback: byte-identical delivery, one write per chunk, drops, refusals."""

from __future__ import annotations

import collections
import logging
import threading
import time

import pytest

from airflow_provider_atlassian_qradar.qradar_transport import QRadarDeliveryError, SyslogFormatter, TcpSender
from sandbox.leef_samples import make_leef_records
from sandbox.receivers import SyslogNg, free_port
from tests.qradar_transport.support import FAST_BACKOFF, HOSTNAME, _event_ids, _expected_lines

pytestmark = pytest.mark.timeout(120)


class TestTcpSender:
    def test_100k_events_arrive_byte_identical_in_order(self, tmp_path, syslog_ng_binary, records_100k):
        formatter = SyslogFormatter(hostname=HOSTNAME)
        with SyslogNg(tmp_path, "tcp") as receiver:
            with TcpSender("127.0.0.1", receiver.port, formatter) as sender:
                assert sender.send(records_100k) == 100_000
            lines = receiver.wait_for_lines(100_000, timeout=60)
            assert receiver.dropped() == 0
        assert len(lines) == 100_000
        assert lines == _expected_lines(formatter, records_100k)
        assert (sender.delivered, sender.replayed, sender.reconnects) == (100_000, 0, 0)

    def test_octet_counting_into_a_syslog_source(self, tmp_path, syslog_ng_binary):
        records = make_leef_records(10_000, size=450)
        formatter = SyslogFormatter(hostname=HOSTNAME, framing="octet-counting")
        with SyslogNg(tmp_path, "syslog-tcp") as receiver:
            with TcpSender("127.0.0.1", receiver.port, formatter, batch_size=300) as sender:
                sender.send(records)
            lines = receiver.wait_for_lines(10_000)
        # The syslog() source strips the length prefix: each line is exactly the message it counted.
        assert lines == _expected_lines(formatter, records)

    def test_writes_one_sendall_per_chunk(self, tmp_path, syslog_ng_binary):
        calls: list[int] = []

        class CountingSocket:
            def __init__(self, sock):
                self._sock = sock

            def sendall(self, data):
                calls.append(len(data))
                return self._sock.sendall(data)

            def __getattr__(self, name):
                return getattr(self._sock, name)

        class CountingTcpSender(TcpSender):
            def connect_once(self):
                return CountingSocket(super().connect_once())  # type: ignore[return-value]

            def _peer_dropped(self, sock):
                return super()._peer_dropped(sock._sock)

        records = make_leef_records(1_000)
        with SyslogNg(tmp_path, "tcp") as receiver:
            with CountingTcpSender("127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), batch_size=200) as s:
                s.send(records)
            assert len(receiver.wait_for_lines(1_000)) == 1_000
        assert len(calls) == 5

    @pytest.mark.parametrize("receipts", [True, False], ids=["receipt-per-page", "replay-window"])
    def test_receiver_restart_mid_send_loses_nothing(self, tmp_path, syslog_ng_binary, records_100k, caplog, receipts):
        # so-rcvbuf(64 KiB): a bounded receive buffer like a production listener's. With kernel autotuning the
        # receiver can abandon more unread data on SIGTERM than the default replay window covers.
        batch_size, page_size = 100, 200
        formatter = SyslogFormatter(hostname=HOSTNAME)
        receiver = SyslogNg(tmp_path, "tcp", so_rcvbuf=65536).start()
        restarted = threading.Event()

        def restart_after_30_percent() -> None:
            deadline = time.monotonic() + 60
            while receiver.line_count() < 30_000 and time.monotonic() < deadline:
                time.sleep(0.005)
            receiver.restart()
            restarted.set()

        restarter = threading.Thread(target=restart_after_30_percent)
        restarter.start()
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.qradar_transport")
        confirmed = []
        try:
            with TcpSender(
                "127.0.0.1",
                receiver.port,
                formatter,
                batch_size=batch_size,
                reconnect_backoff=(0.1, 1.0),
                confirm_delivery=receipts,
            ) as sender:
                for start in range(0, len(records_100k), page_size):  # as the operator does: a receipt per page
                    sender.send(records_100k[start : start + page_size])
                    confirmed.append(sender.confirm())
            restarter.join(60)
            assert restarted.is_set()
            lines = receiver.wait_for_lines(100_000, timeout=60)
        finally:
            receiver.stop()
        counts = collections.Counter(_event_ids(lines))
        missing = {f"ev-{index:06d}" for index in range(100_000)} - set(counts)
        duplicates = sum(count - 1 for count in counts.values())
        assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:3]}"
        assert sender.reconnects >= 1
        assert duplicates <= sender.possibly_duplicated
        if receipts:
            # Everything before the last receipt was read, so a drop re-sends at most the page since then.
            assert all(confirmed)
            assert sender.possibly_duplicated <= page_size * sender.reconnects
        else:
            # Replay window: previous chunk(s) in our send buffer + receiver_buffer_bytes, plus the current chunk.
            assert not any(confirmed)
            frame_bytes = len(formatter.frame(*records_100k[0]))
            bound = 2 * batch_size + sender.receiver_buffer_bytes // frame_bytes + batch_size
            assert sender.possibly_duplicated <= bound * sender.reconnects
        assert "receiver connection dropped; re-sent" in caplog.text
        # Every event that arrived keeps its place relative to the others sent on the same connection.
        assert sorted(counts) == [f"ev-{index:06d}" for index in range(100_000)]

    def test_refused_at_start_is_retried_then_reported(self):
        port = free_port()
        started = time.monotonic()
        sender = TcpSender(
            "127.0.0.1", port, SyslogFormatter(hostname="h"), max_reconnects=2, reconnect_backoff=FAST_BACKOFF
        )
        with pytest.raises(QRadarDeliveryError) as error:
            sender.open()
        message = str(error.value)
        assert f"QRadar at 127.0.0.1:{port} refused the connection" in message
        assert "is the log source listening on that port / is the firewall open?" in message
        assert "gave up after 3 attempts" in message
        assert time.monotonic() - started >= FAST_BACKOFF[0] * 2

    def test_receiver_that_comes_up_late_is_reached(self, tmp_path, syslog_ng_binary):
        receiver = SyslogNg(tmp_path, "tcp")
        starter = threading.Timer(0.5, receiver.start)
        starter.start()
        try:
            with TcpSender(
                "127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), reconnect_backoff=(0.1, 0.5)
            ) as sender:
                sender.send(make_leef_records(10))
            starter.join()
            assert len(receiver.wait_for_lines(10)) == 10
        finally:
            starter.cancel()
            receiver.stop()

    def test_receiver_gone_for_good_gives_a_clear_error(self, tmp_path, syslog_ng_binary):
        receiver = SyslogNg(tmp_path, "tcp").start()
        sender = TcpSender(
            "127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), max_reconnects=2, reconnect_backoff=FAST_BACKOFF
        )
        with sender:
            sender.send(make_leef_records(10))
            receiver.stop()
            time.sleep(0.2)
            with pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(10))
        message = str(error.value)
        assert f"lost the connection to QRadar at 127.0.0.1:{receiver.port}" in message
        assert "gave up after 2 reconnect attempts" in message
        assert "refused the connection" in message
