"""TlsSender against syslog-ng (mutual TLS, certificate problems, restarts) and build_ssl_context."""

from __future__ import annotations

import logging
import os
import ssl
import time
from pathlib import Path

import pytest

from airflow_provider_atlassian_qradar.qradar_transport import (
    QRadarDeliveryError,
    SyslogFormatter,
    TlsSender,
    build_ssl_context,
)
from sandbox.leef_samples import make_leef_records
from sandbox.receivers import CLIENT_KEY_PASSPHRASE, CertBundle, SyslogNg
from tests.qradar_transport.support import HOSTNAME, _event_ids, _expected_lines

pytestmark = pytest.mark.timeout(120)


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
        caplog.set_level(logging.WARNING, logger="airflow_provider_atlassian_qradar.qradar_transport")
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
