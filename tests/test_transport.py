"""Senders against real receivers: syslog-ng on loopback (TCP, TLS, UDP, octet counting) and an HTTPS server."""

from __future__ import annotations

import collections
import itertools
import logging
import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_atlassian_qradar.syslog import SyslogFormatter
from airflow_provider_atlassian_qradar.transport import (
    HttpSender,
    QRadarDeliveryError,
    TcpSender,
    TlsSender,
    UdpSender,
    build_ssl_context,
)
from tests.receivers import (
    CLIENT_KEY_PASSPHRASE,
    CertBundle,
    HttpsReceiver,
    SyslogNg,
    free_port,
    generate_certs,
    make_leef_records,
    require_syslog_ng,
)

pytestmark = pytest.mark.timeout(120)

HOSTNAME = "Atlassian-AuditLogs"
FAST_BACKOFF = (0.05, 0.5)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return generate_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def records_100k() -> list[tuple[str, int]]:
    return make_leef_records(100_000, size=400)


@pytest.fixture
def syslog_ng_binary() -> str:
    return require_syslog_ng()


def _event_ids(lines: list[str]) -> list[str]:
    return [line.split("\tid=", 1)[1].split("\t", 1)[0] for line in lines]


def _expected_lines(formatter: SyslogFormatter, records: list[tuple[str, int]]) -> list[str]:
    return [formatter.message(line, event_ms).decode("utf-8") for line, event_ms in records]


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
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.transport")
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
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.transport")
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


class TestTlsSender:
    def _receiver(self, tmp_path: Path, certs: CertBundle, cert: Path, key: Path, **kwargs) -> SyslogNg:
        return SyslogNg(tmp_path, "tls", tls_cert=cert, tls_key=key, **kwargs)

    def test_100k_events_arrive_byte_identical_in_order(self, tmp_path, syslog_ng_binary, certs, records_100k):
        formatter = SyslogFormatter(hostname=HOSTNAME)
        context = build_ssl_context(ca_cert=str(certs.ca_cert))
        with self._receiver(tmp_path, certs, certs.server_cert, certs.server_key) as receiver:
            with TlsSender("127.0.0.1", receiver.port, formatter, ssl_context=context) as sender:
                sender.send(records_100k)
            lines = receiver.wait_for_lines(100_000, timeout=60)
        assert lines == _expected_lines(formatter, records_100k)

    def test_mutual_tls_with_an_encrypted_client_key(self, tmp_path, syslog_ng_binary, certs):
        context = build_ssl_context(
            ca_cert=certs.ca_cert.read_text(),  # PEM text, not a path
            client_cert=certs.client_cert.read_text(),
            client_key=certs.client_key_encrypted.read_text(),
            key_passphrase=CLIENT_KEY_PASSPHRASE,
        )
        receiver = self._receiver(
            tmp_path, certs, certs.server_cert, certs.server_key, ca=certs.ca_cert, peer_verify="required-trusted"
        )
        with receiver:
            with TlsSender("localhost", receiver.port, SyslogFormatter(hostname="h"), ssl_context=context) as sender:
                sender.send(make_leef_records(500))
            assert len(receiver.wait_for_lines(500)) == 500

    @pytest.mark.parametrize(
        ("server", "trusted_ca", "problem", "subject"),
        [
            ("server", "other_ca_cert", "unable to get local issuer certificate", "CN=qradar-ec.test"),
            ("wrong_host", "ca_cert", "mismatch, certificate is not valid", "CN=wrong-host.example.com"),
            ("expired", "ca_cert", "certificate has expired", "CN=expired.qradar-ec.test"),
        ],
    )
    def test_certificate_problems_are_named(
        self, tmp_path, syslog_ng_binary, certs, server, trusted_ca, problem, subject
    ):
        cert, key = getattr(certs, f"{server}_cert"), getattr(certs, f"{server}_key")
        context = build_ssl_context(ca_cert=str(getattr(certs, trusted_ca)))
        with self._receiver(tmp_path, certs, cert, key) as receiver:
            sender = TlsSender("127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), ssl_context=context)
            started = time.monotonic()
            with pytest.raises(QRadarDeliveryError) as error:
                sender.open()
        message = str(error.value)
        assert problem in message
        assert f"subject '{subject}" in message
        assert "issuer 'CN=QRadar Test CA" in message
        assert "Set ca_cert" in message
        assert "gave up after 1 attempts" in message, "a certificate problem must not be retried"
        assert time.monotonic() - started < 5

    def test_verify_false_accepts_an_expired_certificate(self, tmp_path, syslog_ng_binary, certs):
        context = build_ssl_context(verify=False)
        with self._receiver(tmp_path, certs, certs.expired_cert, certs.expired_key) as receiver:
            with TlsSender("127.0.0.1", receiver.port, SyslogFormatter(hostname="h"), ssl_context=context) as s:
                s.send(make_leef_records(100))
            assert len(receiver.wait_for_lines(100)) == 100

    def test_restart_mid_send_reconnects(self, tmp_path, syslog_ng_binary, certs, caplog):
        records = make_leef_records(20_000)
        context = build_ssl_context(ca_cert=str(certs.ca_cert))
        receiver = self._receiver(tmp_path, certs, certs.server_cert, certs.server_key, so_rcvbuf=65536).start()
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.transport")
        try:
            with TlsSender(
                "127.0.0.1",
                receiver.port,
                SyslogFormatter(hostname="h"),
                ssl_context=context,
                batch_size=100,
                reconnect_backoff=(0.1, 1.0),
            ) as sender:
                sender.send(records[:10_000])
                receiver.wait_for_lines(10_000)
                receiver.restart()
                sender.send(records[10_000:])
            lines = receiver.wait_for_lines(20_000)
        finally:
            receiver.stop()
        assert set(_event_ids(lines)) == {f"ev-{index:06d}" for index in range(20_000)}
        assert sender.reconnects == 1
        assert "receiver connection dropped" in caplog.text


class TestUdpSender:
    def test_100k_events_arrive_byte_identical_in_order(self, tmp_path, syslog_ng_binary, records_100k, caplog):
        # UDP has no flow control: on this box the kernel caps syslog-ng's so-rcvbuf at net.core.rmem_max
        # (4 MiB), and an unpaced burst of 100k datagrams overflowed it (~6% lost, invisible to syslog-ng's
        # counters). The test therefore sends in slices and waits for the receiver between them; the sender's
        # framing and ordering are what is checked, not the receiver's capacity.
        formatter = SyslogFormatter(hostname=HOSTNAME, framing="octet-counting")  # ignored for UDP
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.transport")
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


class TestHttpSender:
    def _sender(self, receiver: HttpsReceiver, certs: CertBundle, **kwargs) -> HttpSender:
        kwargs.setdefault("ssl_context", build_ssl_context(ca_cert=str(certs.ca_cert)))
        kwargs.setdefault("retry_backoff", FAST_BACKOFF)
        return HttpSender(receiver.url, **kwargs)

    def test_batches_are_posted_as_lf_joined_lines(self, certs):
        records = make_leef_records(1_200)
        with HttpsReceiver(certs.server_cert, certs.server_key) as receiver:
            with self._sender(receiver, certs, batch_size=500) as sender:
                assert sender.send(records) == 1_200
        assert [len(post.body.split(b"\n")) for post in receiver.posts] == [500, 500, 200]
        assert {post.content_type for post in receiver.posts} == {"text/plain; charset=utf-8"}
        assert receiver.accepted_lines() == [line for line, _ in records]
        assert not receiver.posts[0].body.startswith(b"<")  # no syslog header

    def test_503_then_200_is_retried_without_duplicates(self, certs):
        records = make_leef_records(300)
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[503, 200]) as receiver:
            with self._sender(receiver, certs, batch_size=500) as sender:
                sender.send(records)
        assert [post.status for post in receiver.posts] == [503, 200]
        assert receiver.accepted_lines() == [line for line, _ in records]
        assert (sender.delivered, sender.replayed) == (300, 300)

    def test_413_splits_the_batch_until_it_fits(self, certs):
        records = make_leef_records(500)
        with HttpsReceiver(certs.server_cert, certs.server_key, max_body_bytes=60 * 401) as receiver:
            with self._sender(receiver, certs, batch_size=500) as sender:
                assert sender.send(records) == 500
        assert receiver.accepted_lines() == [line for line, _ in records]
        assert 413 in [post.status for post in receiver.posts]
        assert sender.delivered == 500

    def test_single_event_too_large_is_a_clear_error(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, max_body_bytes=100) as receiver:
            with self._sender(receiver, certs) as sender, pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(4))
        assert "rejected a single event of 400 bytes as too large (413)" in str(error.value)
        assert error.value.permanent, "one event cannot be split further: retrying gets the same 413"

    def test_400_is_not_retried_and_names_the_status(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[400]) as receiver:
            with self._sender(receiver, certs) as sender, pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(3))
        assert "answered 400 Bad Request" in str(error.value)
        assert len(receiver.posts) == 1

    def test_persistent_5xx_gives_up(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[503] * 10) as receiver:
            with self._sender(receiver, certs, retries=3) as sender, pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(3))
        assert "kept answering HTTP 503 Service Unavailable after 3 attempts" in str(error.value)

    def test_untrusted_server_is_a_tls_error(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key) as receiver:
            sender = self._sender(receiver, certs, ssl_context=build_ssl_context(ca_cert=str(certs.other_ca_cert)))
            with sender, pytest.raises(QRadarDeliveryError, match="TLS with the QRadar HTTP Receiver"):
                sender.send(make_leef_records(1))
        assert receiver.posts == []

    def test_mutual_tls(self, certs):
        context = build_ssl_context(
            ca_cert=str(certs.ca_cert),
            client_cert=str(certs.client_cert),
            client_key=str(certs.client_key_encrypted),
            key_passphrase=CLIENT_KEY_PASSPHRASE,
        )
        with HttpsReceiver(certs.server_cert, certs.server_key, client_ca=certs.ca_cert) as receiver:
            with self._sender(receiver, certs, ssl_context=context) as sender:
                sender.send(make_leef_records(10))
        assert len(receiver.accepted_lines()) == 10


class TestBuildSslContext:
    def test_pem_text_is_written_to_a_private_file_and_removed(self, certs, tmp_path, monkeypatch):
        import tempfile

        seen: list[int] = []
        original = ssl.SSLContext.load_cert_chain

        def spy(self, certfile, keyfile=None, password=None):
            seen.extend(os.stat(path).st_mode & 0o777 for path in (certfile, keyfile))
            return original(self, certfile, keyfile, password)

        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
        build_ssl_context(client_cert=certs.client_cert.read_text(), client_key=certs.client_key.read_text())
        assert seen == [0o600, 0o600]
        assert list(tmp_path.iterdir()) == []

    def test_key_material_never_appears_in_errors(self, certs, tmp_path, monkeypatch):
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        fake_key = "-----BEGIN PRIVATE KEY-----\nFAKEKEYMATERIAL-DO-NOT-LOG-0123456789\n-----END PRIVATE KEY-----\n"
        with pytest.raises(ValueError) as error:
            build_ssl_context(client_cert=str(certs.client_cert), client_key=fake_key)
        assert "FAKEKEYMATERIAL" not in str(error.value)
        assert "FAKEKEYMATERIAL" not in repr(error.value.__context__)
        assert list(tmp_path.iterdir()) == []

    def test_wrong_passphrase_names_the_fix(self, certs):
        with pytest.raises(ValueError, match="passphrase"):
            build_ssl_context(
                client_cert=str(certs.client_cert), client_key=str(certs.client_key_encrypted), key_passphrase="nope"
            )

    def test_key_that_is_not_a_path_is_not_echoed(self):
        with pytest.raises(ValueError) as error:
            build_ssl_context(client_cert="/nonexistent/cert.pem", client_key="MIIEvSECRETBASE64")
        assert "SECRETBASE64" not in str(error.value)
