"""Both hooks read connections as the Airflow UI saves them: empty fields arrive as ``null`` and mean "default".

Connections come from ``AIRFLOW_CONN_*`` environment variables (JSON), the way Airflow resolves them in a task.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_atlassian_qradar.connection_fields import (
    ATLASSIAN_EXTRAS,
    QRADAR_EXTRAS,
    ConnectionConfigError,
)
from airflow_provider_atlassian_qradar.get_provider_info import get_provider_info
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
from airflow_provider_atlassian_qradar.hooks.qradar import QRadarHook

API_KEY = "settings-test-KEY-never-in-a-message"
PASSPHRASE = "settings-test-PASSPHRASE-never-in-a-message"
CLIENT_KEY = "-----BEGIN PRIVATE KEY-----\nSETTINGS-TEST-KEY-MATERIAL\n-----END PRIVATE KEY-----\n"

QRADAR_DEFAULTS = {
    "protocol": "tcp",
    "port": 514,
    "framing": "lf",
    "syslog_format": "rfc5424",
    "log_source_identifier": "Atlassian-AuditLogs",
    "max_frame_bytes": 4096,
    "time_zone": "UTC",
    "ca_cert": None,
    "client_cert": None,
    "client_key": None,
    "verify": True,
    "connect_timeout": 10.0,
    "write_timeout": 30.0,
    "batch_size": 200,
    "max_reconnects": 10,
    "receiver_buffer_bytes": 262144,
    "confirm_delivery": True,
}
ATLASSIAN_DEFAULTS = {
    "page_size": 500,
    "requests_per_minute": {"events-stream": 50.0, "events": 10.0},
    "timeout": 60.0,
    "max_retries": 8,
}


def form_fields(connection_type: str) -> list[str]:
    entry = next(e for e in get_provider_info()["connection-types"] if e["connection-type"] == connection_type)
    return list(entry["conn-fields"])


def all_null(connection_type: str) -> dict[str, Any]:
    """What Admin -> Connections -> Add saves when the user fills no extra field."""
    return dict.fromkeys(form_fields(connection_type))


def all_empty(connection_type: str) -> dict[str, Any]:
    return dict.fromkeys(form_fields(connection_type), "")


def set_qradar(monkeypatch: pytest.MonkeyPatch, extra: Any, **fields: Any) -> None:
    conn = {"conn_type": "qradar", "host": "127.0.0.1", "password": PASSPHRASE, "extra": extra, **fields}
    monkeypatch.setenv("AIRFLOW_CONN_QRADAR_DEFAULT", json.dumps(conn))


def set_atlassian(monkeypatch: pytest.MonkeyPatch, extra: Any, **fields: Any) -> None:
    conn = {
        "conn_type": "atlassian_admin",
        "host": "http://127.0.0.1:1",
        "login": "org-1",
        "password": API_KEY,
        "extra": extra,
        **fields,
    }
    monkeypatch.setenv("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", json.dumps(conn))


def qradar_settings() -> dict[str, Any]:
    settings = QRadarHook().settings
    return {key: getattr(settings, key) for key in QRADAR_DEFAULTS}


def atlassian_settings() -> dict[str, Any]:
    settings = AtlassianAuditLogHook().settings
    return {key: getattr(settings, key) for key in ATLASSIAN_DEFAULTS}


class TestFormDeclaresEveryExtra:
    def test_the_form_has_every_extra_the_hooks_read(self):
        assert form_fields("qradar") == [field.name for field in QRADAR_EXTRAS]
        assert form_fields("atlassian_admin") == [field.name for field in ATLASSIAN_EXTRAS]
        assert set(QRADAR_DEFAULTS) - {"port"} == set(form_fields("qradar"))

    @pytest.mark.parametrize("connection_type", ["qradar", "atlassian_admin"])
    def test_form_shows_the_defaults_the_hook_uses_and_no_null_choice(self, connection_type):
        entry = next(e for e in get_provider_info()["connection-types"] if e["connection-type"] == connection_type)
        for name, field in entry["conn-fields"].items():
            assert None not in field["schema"].get("enum", []), name
        if connection_type == "qradar":
            schemas = {name: field["schema"] for name, field in entry["conn-fields"].items()}
            assert schemas["confirm_delivery"]["default"] is True  # the switch shows ON, as the hook behaves
            assert schemas["protocol"]["enum"] == ["tcp", "tls", "udp", "http", "https"]
            shown = {name: schema["default"] for name, schema in schemas.items() if "default" in schema}
            assert shown == {k: v for k, v in QRADAR_DEFAULTS.items() if k in shown}
            assert "Default true." in entry["conn-fields"]["confirm_delivery"]["description"]
        else:
            shown = {name: field["schema"].get("default") for name, field in entry["conn-fields"].items()}
            assert shown == {
                "page_size": 500,
                "stream_requests_per_minute": 50.0,
                "events_requests_per_minute": 10.0,
                "timeout": 60.0,
                "max_retries": 8,
                "request_deadline": 180.0,
                "max_response_bytes": 32 * 1024 * 1024,
                "allow_insecure_http": False,
            }


class TestUiMadeConnections:
    @pytest.mark.parametrize("extra", ["null", "empty", "{}", "missing"])
    def test_qradar_empty_extras_mean_defaults(self, monkeypatch, extra):
        value = {"null": all_null("qradar"), "empty": all_empty("qradar"), "{}": {}, "missing": None}[extra]
        set_qradar(monkeypatch, value)
        assert qradar_settings() == QRADAR_DEFAULTS
        QRadarHook().validate()

    @pytest.mark.parametrize("extra", ["null", "empty", "{}", "missing"])
    def test_atlassian_empty_extras_mean_defaults(self, monkeypatch, extra):
        value = {
            "null": all_null("atlassian_admin"),
            "empty": all_empty("atlassian_admin"),
            "{}": {},
            "missing": None,
        }[extra]
        set_atlassian(monkeypatch, value)
        assert atlassian_settings() == ATLASSIAN_DEFAULTS

    def test_qradar_partially_set(self, monkeypatch):
        extra = all_null("qradar") | {
            "protocol": "TLS",
            "connect_timeout": "2.5",
            "confirm_delivery": False,
            "batch_size": 50,
            "framing": "",
        }
        set_qradar(monkeypatch, extra, port=6514)
        expected = QRADAR_DEFAULTS | {
            "protocol": "tls",
            "port": 6514,
            "connect_timeout": 2.5,
            "confirm_delivery": False,
            "batch_size": 50,
        }
        assert qradar_settings() == expected

    def test_qradar_http_batch_default_follows_the_protocol(self, monkeypatch):
        set_qradar(monkeypatch, all_null("qradar") | {"protocol": "https"})
        assert (QRadarHook().batch_size, QRadarHook().port) == (500, 12469)

    def test_atlassian_partially_set(self, monkeypatch):
        set_atlassian(monkeypatch, all_null("atlassian_admin") | {"page_size": "50", "stream_requests_per_minute": 0})
        assert atlassian_settings() == ATLASSIAN_DEFAULTS | {
            "page_size": 50,
            "requests_per_minute": {"events-stream": 0.0, "events": 10.0},
        }


class TestConfigurationErrors:
    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"connect_timeout": "soon"}, r"extra connect_timeout \(Connect timeout \(s\)\) = 'soon' is not a number"),
            ({"batch_size": 2.5}, r"extra batch_size \(Batch size\) = 2.5 is not a whole number"),
            ({"max_reconnects": True}, "extra max_reconnects .* is not a whole number"),
            ({"protocol": "relp"}, "unknown protocol 'relp': use one of tcp, tls, udp, http, https"),
            ({"framing": "nul"}, "unknown framing 'nul': use one of lf, octet-counting"),
            ({"verify": "maybe"}, r"extra verify .* = 'maybe' is not a boolean: use true or false"),
            ({"max_frame_bytes": 100}, "extra max_frame_bytes .* = 100 is below the minimum 512"),
            ({"client_key": 12345}, r"extra client_key .* = \(hidden\) is not text"),
            ({"log_source_identifier": ["a"]}, "extra log_source_identifier .* is not text"),
        ],
    )
    def test_qradar_bad_values_name_the_field(self, monkeypatch, extra, message):
        set_qradar(monkeypatch, all_null("qradar") | extra)
        with pytest.raises(ConnectionConfigError, match=message) as info:
            _ = QRadarHook().settings
        assert "'qradar_default'" in str(info.value)
        assert PASSPHRASE not in str(info.value)

    def test_qradar_secret_values_never_in_the_message(self, monkeypatch):
        set_qradar(monkeypatch, {"protocol": "tls", "client_key": CLIENT_KEY, "ca_cert": "/nonexistent/ca.pem"})
        with pytest.raises(ConnectionConfigError, match="ca_cert") as info:
            QRadarHook().validate()
        assert "SETTINGS-TEST-KEY-MATERIAL" not in str(info.value) and PASSPHRASE not in str(info.value)

    def test_qradar_missing_host(self, monkeypatch):
        set_qradar(monkeypatch, {}, host="")
        with pytest.raises(ConnectionConfigError, match="has no host: set the QRadar event collector host"):
            _ = QRadarHook().settings

    def test_qradar_extra_that_is_not_an_object(self, monkeypatch):
        set_qradar(monkeypatch, [1, 2])
        with pytest.raises(ConnectionConfigError, match="extra must be a JSON object"):
            _ = QRadarHook().settings

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"page_size": "many"}, r"extra page_size \(Page size\) = 'many' is not a whole number"),
            ({"page_size": 5000}, "extra page_size .* = 5000 is above the maximum 1000"),
            ({"timeout": -1}, "extra timeout .* = -1.0 is below the minimum 0.1"),
            ({"stream_requests_per_minute": "fast"}, "extra stream_requests_per_minute .* is not a number"),
        ],
    )
    def test_atlassian_bad_values_name_the_field(self, monkeypatch, extra, message):
        set_atlassian(monkeypatch, all_null("atlassian_admin") | extra)
        with pytest.raises(ConnectionConfigError, match=message) as info:
            AtlassianAuditLogHook().validate()
        assert API_KEY not in str(info.value)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"login": None}, "has no Organization ID: put it in the login field"),
            ({"login": "  "}, "has no Organization ID"),
            ({"password": None}, "has no API key: put the organization API key"),
        ],
    )
    def test_atlassian_missing_org_or_key(self, monkeypatch, fields, message):
        set_atlassian(monkeypatch, {}, **fields)
        with pytest.raises(ConnectionConfigError, match=message) as info:
            AtlassianAuditLogHook().validate()
        assert API_KEY not in str(info.value)

    def test_test_connection_reports_the_field(self, monkeypatch):
        set_qradar(monkeypatch, {"connect_timeout": "soon"})
        ok, message = QRadarHook().test_connection()
        assert not ok and "connect_timeout" in message
        set_atlassian(monkeypatch, {"page_size": "many"})
        ok, message = AtlassianAuditLogHook().test_connection()
        assert not ok and "page_size" in message and API_KEY not in message
