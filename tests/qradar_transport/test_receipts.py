"""Receipts per page: into syslog-ng, and from scripted receivers that abandon data or never close."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time

import pytest

from airflow_provider_atlassian_qradar.qradar_transport import (
    QRadarDeliveryError,
    SyslogFormatter,
    TcpSender,
    TlsSender,
    build_ssl_context,
)
from sandbox.leef_samples import make_leef_records
from sandbox.receivers import SyslogNg
from tests.qradar_transport.support import FAST_BACKOFF, HOSTNAME, _event_ids, _expected_lines

pytestmark = pytest.mark.timeout(120)


class _ScriptedReceiver:
    """
    A TCP receiver whose n-th connection follows a script, for receipts a syslog-ng cannot be made to refuse.

    Scripts: ``"read_all"`` reads to end-of-data and closes (a well-behaved receiver); ``"never_close"`` reads to
    end-of-data and keeps the connection open; ``"abandon"`` reads 1000 bytes, waits until more has arrived and
    closes with it unread (the kernel then resets the connection).
    """

    def __init__(self, scripts: list[str]) -> None:
        self.scripts = scripts
        self.received: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._server.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        scripts = itertools.chain(self.scripts, itertools.repeat("read_all"))  # then well-behaved for good
        for script in scripts:
            conn = self._accept()
            if conn is None:
                return
            data = bytearray()
            if script == "abandon":
                while len(data) < 1000:
                    data += conn.recv(1000 - len(data))
                time.sleep(0.3)
                conn.close()
            else:
                while chunk := conn.recv(65536):
                    data += chunk
                if script == "never_close":
                    self._held.append(conn)
                else:
                    conn.close()
            if data:
                self.received.append(bytes(data))

    def _accept(self) -> socket.socket | None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            return conn
        return None

    def lines(self) -> list[str]:
        return [line for data in self.received for line in data.decode().splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._server.close()
        for conn in self._held:
            conn.close()


class TestReceipts:
    @pytest.mark.parametrize("transport", ["tcp", "tls"])
    def test_a_receipt_per_page_into_syslog_ng(self, tmp_path, syslog_ng_binary, certs, transport):
        records = make_leef_records(1_000)
        formatter = SyslogFormatter(hostname=HOSTNAME)
        if transport == "tls":
            receiver = SyslogNg(tmp_path, "tls", tls_cert=certs.server_cert, tls_key=certs.server_key)
            context = build_ssl_context(ca_cert=str(certs.ca_cert))
            make_sender = lambda port: TlsSender("127.0.0.1", port, formatter, ssl_context=context)  # noqa: E731
        else:
            receiver = SyslogNg(tmp_path, "tcp")
            make_sender = lambda port: TcpSender("127.0.0.1", port, formatter)  # noqa: E731
        with receiver, make_sender(receiver.port) as sender:
            receipts = []
            for start in range(0, 1_000, 200):
                sender.send(records[start : start + 200])
                receipts.append(sender.confirm())
            lines = receiver.wait_for_lines(1_000)
        assert receipts == [True] * 5
        assert lines == _expected_lines(formatter, records)
        assert (sender.reconnects, sender.possibly_duplicated) == (0, 0)

    def test_receiver_that_abandons_unread_data_gets_it_again(self, caplog):
        records = make_leef_records(200)
        receiver = _ScriptedReceiver(["abandon", "read_all"])
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.qradar_transport")
        try:
            with TcpSender(
                "127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), reconnect_backoff=FAST_BACKOFF
            ) as sender:
                sender.send(records)
                assert sender.confirm() is True
        finally:
            receiver.close()
        first, second = receiver.received
        assert 1000 <= len(first) < len(second)  # the first connection was reset with data unread
        assert _event_ids(second.decode().splitlines()) == [f"ev-{index:06d}" for index in range(200)]
        assert (sender.reconnects, sender.possibly_duplicated) == (1, 200)
        assert "closed before reading everything" in caplog.text

    def test_receiver_that_never_closes_is_a_failure_not_a_silent_downgrade(self):
        records = make_leef_records(400)
        receiver = _ScriptedReceiver(["never_close", "read_all"])
        try:
            with TcpSender("127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), write_timeout=0.5) as sender:
                sender.send(records[:200])
                with pytest.raises(QRadarDeliveryError) as error:
                    sender.confirm()
                assert sender.receipts is True, "receipts stay on: the next page asks for one again"
                sender.send(records[200:])  # the unconfirmed page is re-sent first, on a new connection
                assert sender.confirm() is True
        finally:
            receiver.close()
        message = str(error.value)
        assert "gave no receipt" in message and "timed out after 0.5s (write_timeout)" in message
        assert "confirm_delivery to false" in message and "connect timeout" not in message
        assert not error.value.permanent
        ids = _event_ids(receiver.lines())
        assert sorted(set(ids)) == [f"ev-{index:06d}" for index in range(400)]
        assert len(ids) - len(set(ids)) <= 200, "at most the unconfirmed page twice"

    def test_confirm_delivery_false_never_waits(self):
        receiver = _ScriptedReceiver(["never_close"])
        try:
            sender = TcpSender(
                "127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), confirm_delivery=False, write_timeout=2
            )
            sender.send(make_leef_records(10))
            started = time.monotonic()
            assert sender.confirm() is False
            assert time.monotonic() - started < 1.5  # not the 2 s a receipt would wait for
            sender.close()  # waits write_timeout for the receiver's close: this one holds on
        finally:
            receiver.close()
