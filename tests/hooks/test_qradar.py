"""QRadarHook: settings from AIRFLOW_CONN_* connections, senders, test_connection, secret hygiene."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_atlassian_qradar.get_provider_info import get_provider_info
from airflow_provider_atlassian_qradar.hooks.qradar import QRadarHook
from airflow_provider_atlassian_qradar.qradar_transport import HttpSender, TcpSender, TlsSender, UdpSender
from sandbox.leef_samples import make_leef_records
from sandbox.receivers import (
    CLIENT_KEY_PASSPHRASE,
    CertBundle,
    HttpsReceiver,
    SyslogNg,
    free_port,
    generate_certs,
    require_syslog_ng,
)

FAKE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nFAKEKEY-QRADARHOOK-MUST-NEVER-BE-LOGGED-0123456789abcdef\n-----END PRIVATE KEY-----\n"
)
FAKE_PASSPHRASE = "passphrase-MUST-NEVER-BE-LOGGED"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return generate_certs(tmp_path_factory.mktemp("certs"))


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str = "qradar_default", **fields) -> None:
    fields.setdefault("conn_type", "qradar")
    fields.setdefault("host", "127.0.0.1")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


class TestQRadarHook:
    def test_init_does_no_io(self, monkeypatch):
        monkeypatch.delenv("AIRFLOW_CONN_QRADAR_DEFAULT", raising=False)
        hook = QRadarHook()  # no connection exists: only resolving the settings may fail
        assert hook.qradar_conn_id == "qradar_default"
        with pytest.raises(Exception, match="qradar_default"):
            _ = hook.settings

    @pytest.mark.parametrize(
        ("protocol", "port", "sender_class"),
        [
            (None, 514, TcpSender),
            ("tcp", 514, TcpSender),
            ("udp", 514, UdpSender),
            ("tls", 6514, TlsSender),
            ("http", 12469, HttpSender),
            ("https", 12469, HttpSender),
        ],
    )
    def test_default_port_and_sender_per_protocol(self, monkeypatch, protocol, port, sender_class):
        set_connection(monkeypatch, extra={"protocol": protocol} if protocol else {})
        hook = QRadarHook()
        assert hook.port == port
        assert isinstance(hook.get_sender(), sender_class)

    def test_reconnect_and_replay_settings_reach_the_sender(self, monkeypatch):
        set_connection(
            monkeypatch,
            conn_type="qradar",
            host="127.0.0.1",
            port=1514,
            extra={"protocol": "tcp", "max_reconnects": 2, "receiver_buffer_bytes": 0},
        )
        sender = QRadarHook().get_sender()
        assert (sender.max_reconnects, sender.receiver_buffer_bytes, sender.confirm_delivery) == (2, 0, True)

    @pytest.mark.parametrize(("value", "expected"), [(False, False), ("false", False), ("true", True), (None, True)])
    def test_confirm_delivery_reaches_the_sender(self, monkeypatch, value, expected):
        set_connection(monkeypatch, host="127.0.0.1", extra={"protocol": "tls", "confirm_delivery": value})
        assert QRadarHook().get_sender().confirm_delivery is expected

    def test_confirm_delivery_that_is_not_a_boolean_is_named(self, monkeypatch):
        set_connection(monkeypatch, host="127.0.0.1", extra={"protocol": "tcp", "confirm_delivery": "sometimes"})
        with pytest.raises(ValueError, match="confirm_delivery"):
            QRadarHook().get_sender()

    def test_settings_from_the_connection(self, monkeypatch):
        set_connection(
            monkeypatch,
            host="qradar-ec.example.com",
            port=10514,
            extra={
                "protocol": "tcp",
                "framing": "octet-counting",
                "syslog_format": "rfc3164",
                "log_source_identifier": "atlassian.prod",
                "max_frame_bytes": 8192,
                "batch_size": 50,
                "connect_timeout": 3,
                "write_timeout": 7,
            },
        )
        hook = QRadarHook()
        assert (hook.host, hook.port, hook.framing, hook.syslog_format) == (
            "qradar-ec.example.com",
            10514,
            "octet-counting",
            "rfc3164",
        )
        assert (hook.log_source_identifier, hook.max_frame_bytes, hook.batch_size) == ("atlassian.prod", 8192, 50)
        sender = hook.get_sender()
        assert isinstance(sender, TcpSender)
        assert (sender.connect_timeout, sender.write_timeout, sender.batch_size) == (3, 7, 50)

    def test_defaults(self, monkeypatch):
        set_connection(monkeypatch)
        hook = QRadarHook()
        assert (hook.protocol, hook.framing, hook.syslog_format) == ("tcp", "lf", "rfc5424")
        assert (hook.log_source_identifier, hook.max_frame_bytes, hook.verify) == ("Atlassian-AuditLogs", 4096, True)

    def test_constructor_overrides_the_connection(self, monkeypatch):
        set_connection(monkeypatch, extra={"log_source_identifier": "from-conn", "max_frame_bytes": 2048})
        hook = QRadarHook(log_source_identifier="override", max_frame_bytes=1024, time_zone="Europe/Berlin")
        assert (hook.log_source_identifier, hook.max_frame_bytes) == ("override", 1024)
        assert hook.get_formatter().frame("L", 1767268800123).startswith(b"<110>1 2026-01-01T13:00:00.123+01:00 ")

    def test_leef_budget(self, monkeypatch):
        set_connection(monkeypatch, extra={"log_source_identifier": "app01.example.com"})
        # <110>1 + 24-char time + host + spaces + LF = 51 bytes of overhead.
        assert QRadarHook().leef_budget() == 4096 - 51
        set_connection(monkeypatch, extra={"protocol": "https"})
        assert QRadarHook().leef_budget() == 4096

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"protocol": "relp"}, "unknown protocol 'relp': use one of tcp, tls, udp, http, https"),
            ({"framing": "nul"}, "unknown framing 'nul': use one of lf, octet-counting"),
            ({"syslog_format": "cef"}, "unknown syslog_format 'cef': use one of rfc5424, rfc3164"),
            ({"max_frame_bytes": 100}, "below the minimum 512"),
            ({"verify": "maybe"}, "not a boolean"),
        ],
    )
    def test_bad_settings_name_the_allowed_values(self, monkeypatch, extra, message):
        set_connection(monkeypatch, extra=extra)
        with pytest.raises(ValueError, match=message):
            _ = QRadarHook().settings

    def test_validate_and_describe(self, monkeypatch):
        set_connection(monkeypatch, port=6514, extra={"protocol": "tls", "verify": True})
        hook = QRadarHook(time_zone="Europe/Berlin")
        hook.validate()
        assert hook.time_zone == "Europe/Berlin"
        assert hook.describe() == "tls://127.0.0.1:6514 (log source Atlassian-AuditLogs, rfc5424, lf framing)"
        set_connection(monkeypatch, extra={"protocol": "tls", "ca_cert": "/nonexistent/ca.pem"})
        with pytest.raises(ValueError, match=r"ca_cert '/nonexistent/ca\.pem' is neither PEM text"):
            QRadarHook().validate()

    def test_bad_log_source_identifier(self, monkeypatch):
        set_connection(monkeypatch, extra={"log_source_identifier": "Atlassian Audit Logs"})
        with pytest.raises(ValueError, match="without spaces"):
            QRadarHook().get_sender()

    def test_ui_field_behaviour_matches_provider_info(self):
        declared = next(
            entry for entry in get_provider_info()["connection-types"] if entry["connection-type"] == "qradar"
        )
        assert declared["hook-class-name"] == f"{QRadarHook.__module__}.{QRadarHook.__name__}"
        behaviour = QRadarHook.get_ui_field_behaviour()
        assert behaviour["hidden_fields"] == declared["ui-field-behaviour"]["hidden-fields"]
        assert behaviour["relabeling"] == declared["ui-field-behaviour"]["relabeling"]
        assert behaviour["placeholders"] == declared["ui-field-behaviour"]["placeholders"]
        assert QRadarHook.conn_type == declared["connection-type"]

    # -- test_connection against real receivers -------------------------------------------------------------------

    def test_test_connection_tcp_ok(self, monkeypatch, tmp_path):
        require_syslog_ng()
        with SyslogNg(tmp_path, "tcp") as receiver:
            set_connection(monkeypatch, port=receiver.port)
            assert QRadarHook().test_connection() == (
                True,
                f"connected to QRadar at 127.0.0.1:{receiver.port} over TCP",
            )

    def test_test_connection_refused(self, monkeypatch):
        port = free_port()
        set_connection(monkeypatch, port=port)
        ok, message = QRadarHook().test_connection()
        assert not ok
        assert message == (
            f"QRadar at 127.0.0.1:{port} refused the connection: is the log source listening on that port / "
            "is the firewall open?"
        )

    def test_test_connection_dns_failure(self, monkeypatch):
        set_connection(monkeypatch, host="qradar.invalid")
        ok, message = QRadarHook().test_connection()
        assert not ok and "cannot resolve QRadar host 'qradar.invalid'" in message

    def test_test_connection_tls_failure_names_the_certificate(self, monkeypatch, tmp_path, certs):
        require_syslog_ng()
        with SyslogNg(tmp_path, "tls", tls_cert=certs.server_cert, tls_key=certs.server_key) as receiver:
            set_connection(
                monkeypatch, port=receiver.port, extra={"protocol": "tls", "ca_cert": str(certs.other_ca_cert)}
            )
            ok, message = QRadarHook().test_connection()
        assert not ok
        assert "unable to get local issuer certificate" in message
        assert "subject 'CN=qradar-ec.test" in message and "issuer 'CN=QRadar Test CA" in message

    def test_mutual_tls_sends_with_an_encrypted_key_as_pem_text(self, monkeypatch, tmp_path, certs):
        require_syslog_ng()
        receiver = SyslogNg(
            tmp_path,
            "tls",
            tls_cert=certs.server_cert,
            tls_key=certs.server_key,
            ca=certs.ca_cert,
            peer_verify="required-trusted",
        )
        with receiver:
            set_connection(
                monkeypatch,
                port=receiver.port,
                password=CLIENT_KEY_PASSPHRASE,
                extra={
                    "protocol": "tls",
                    "ca_cert": certs.ca_cert.read_text(),
                    "client_cert": certs.client_cert.read_text(),
                    "client_key": certs.client_key_encrypted.read_text(),
                },
            )
            hook = QRadarHook()
            assert hook.test_connection()[0]
            with hook.get_sender() as sender:
                sender.send(make_leef_records(100))
            assert len(receiver.wait_for_lines(100)) == 100

    def test_verify_false_sends_and_warns(self, monkeypatch, tmp_path, certs, caplog, capsys):
        require_syslog_ng()
        caplog.set_level(logging.WARNING)
        with SyslogNg(tmp_path, "tls", tls_cert=certs.expired_cert, tls_key=certs.expired_key) as receiver:
            set_connection(monkeypatch, port=receiver.port, extra={"protocol": "tls", "verify": False})
            with QRadarHook().get_sender() as sender:
                sender.send(make_leef_records(10))
            assert len(receiver.wait_for_lines(10)) == 10
        # Airflow routes hook loggers through structlog (stdout) rather than the logging handlers caplog uses.
        logged = caplog.text + "".join(capsys.readouterr())
        assert "TLS certificate verification of QRadar at 127.0.0.1" in logged
        assert "is OFF (verify=false)" in logged

    def test_test_connection_https(self, monkeypatch, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key) as receiver:
            set_connection(monkeypatch, port=receiver.port, extra={"protocol": "https", "ca_cert": str(certs.ca_cert)})
            ok, message = QRadarHook().test_connection()
            assert ok, message
            assert receiver.heads == 1 and receiver.posts == []
            set_connection(
                monkeypatch, port=receiver.port, extra={"protocol": "https", "ca_cert": str(certs.other_ca_cert)}
            )
            ok, message = QRadarHook().test_connection()
            assert not ok and "TLS with the QRadar HTTP Receiver" in message

    def test_https_sender_delivers(self, monkeypatch, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[503, 200]) as receiver:
            set_connection(monkeypatch, port=receiver.port, extra={"protocol": "https", "ca_cert": str(certs.ca_cert)})
            records = make_leef_records(20)
            with QRadarHook().get_sender() as sender:
                assert sender.send(records) == 20
        assert receiver.accepted_lines() == [line for line, _ in records]

    # -- secrets --------------------------------------------------------------------------------------------------

    @pytest.mark.parametrize("protocol", ["tls", "https"])
    def test_client_key_never_in_logs_or_errors(self, monkeypatch, caplog, capsys, certs, protocol):
        caplog.set_level(logging.DEBUG)
        set_connection(
            monkeypatch,
            port=free_port(),
            password=FAKE_PASSPHRASE,
            extra={"protocol": protocol, "client_cert": str(certs.client_cert), "client_key": FAKE_KEY},
        )
        hook = QRadarHook()
        ok, message = hook.test_connection()
        with pytest.raises(ValueError) as error:
            hook.get_sender()
        assert not ok and "client_cert/client_key could not be loaded" in message
        texts = [message, str(error.value), repr(error.value), caplog.text, *capsys.readouterr()]
        for text in texts:
            assert "FAKEKEY-QRADARHOOK" not in text
            assert FAKE_PASSPHRASE not in text

    def test_secrets_are_registered_for_masking(self, monkeypatch):
        masked: list[str] = []
        monkeypatch.setattr("airflow_provider_atlassian_qradar.hooks.qradar.mask_secret", masked.append)
        set_connection(monkeypatch, password=FAKE_PASSPHRASE, extra={"protocol": "tls", "client_key": FAKE_KEY})
        _ = QRadarHook().settings
        assert masked == [FAKE_KEY, FAKE_PASSPHRASE]

    def test_settings_repr_leaves_out_the_key_and_its_passphrase(self, monkeypatch):
        set_connection(monkeypatch, password=FAKE_PASSPHRASE, extra={"protocol": "tls", "client_key": FAKE_KEY})
        shown = repr(QRadarHook().settings)
        assert "protocol='tls'" in shown
        assert "FAKEKEY-QRADARHOOK" not in shown and FAKE_PASSPHRASE not in shown
