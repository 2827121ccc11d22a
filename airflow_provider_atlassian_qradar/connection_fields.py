"""The connection extras of both hooks, declared once: name, type, default and form widget.

The hooks parse a connection's ``extra`` with :func:`read_extras` and ``get_provider_info`` builds the Airflow
connection form (``conn-fields``) from the same tables, so a default shown in the form is the default the hook uses.

Airflow 3.3's connection form saves every extra the user leaves empty as ``null``; ``null`` and an empty string
therefore mean "use the default", exactly as a missing key does.

Pure code: no Airflow import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_atlassian_qradar.qradar_transport import DEFAULT_RECEIVER_BUFFER_BYTES, FRAMINGS, SYSLOG_FORMATS

DEFAULT_ATLASSIAN_BASE_URL = "https://api.atlassian.com"
QRADAR_PROTOCOLS = ("tcp", "tls", "udp", "http", "https")

_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ConnectionConfigError(ValueError):
    """A connection is missing a field or has a value that cannot work; retrying the task cannot fix it.

    The operator turns it into ``AirflowFailException`` so the task fails at once. The message names the
    connection, the field and the fix, and never contains a secret.
    """


@dataclass(frozen=True)
class ExtraField:
    """One connection extra: how it is parsed and how the connection form shows it.

    :param name: the key in the connection's ``extra`` JSON.
    :param kind: ``str``, ``int``, ``float`` or ``bool``.
    :param label: the form label.
    :param description: help text under the field (the default is appended to it).
    :param default: the value used when the extra is missing, ``null`` or empty; ``None`` = no single default.
    :param minimum: smallest allowed number (``int``/``float`` only).
    :param maximum: largest allowed number (``int``/``float`` only).
    :param choices: allowed values of a ``str`` extra (compared in lower case); shown as a dropdown.
    :param secret: the value is masked in the form and never appears in an error message.
    """

    name: str
    kind: type
    label: str
    description: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False

    def conn_field(self) -> dict[str, Any]:
        """The ``conn-fields`` entry for ``get_provider_info`` (a JSON Schema the Airflow UI renders)."""
        schema: dict[str, Any] = {"type": [_JSON_TYPES[self.kind], "null"]}
        if self.default is not None:
            schema["default"] = self.default
        if self.choices:
            schema["enum"] = list(self.choices)  # no null choice: the form then shows the default, not "null"
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.secret:
            schema["format"] = "password"
        description = self.description
        if self.default is not None:
            if isinstance(self.default, bool):
                shown = str(self.default).lower()
            elif isinstance(self.default, float):
                shown = f"{self.default:g}"  # 10, not 10.0
            else:
                shown = str(self.default)
            description = f"{description} Default {shown}."
        return {"label": self.label, "description": description, "schema": schema}

    def parse(self, raw: Any, conn_id: str) -> Any:
        """Return the value of this extra: the default when ``raw`` is missing, ``null`` or empty.

        :param raw: the value found in the connection's ``extra`` (``None`` when absent).
        :param conn_id: the connection id, for the error message.
        :raises ConnectionConfigError: naming the connection, the extra and the allowed values.
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.default
        shown = "(hidden)" if self.secret else repr(raw)
        where = f"connection {conn_id!r}: extra {self.name} ({self.label})"
        if self.kind is bool:
            return self._parse_bool(raw, where, shown)
        if self.kind in (int, float):
            return self._parse_number(raw, where, shown)
        if not isinstance(raw, str):
            raise ConnectionConfigError(f"{where} = {shown} is not text: write it as a JSON string")
        value = raw  # certificates and keys are kept byte for byte
        if self.choices:
            value = raw.strip().lower()
            if value not in self.choices:
                raise ConnectionConfigError(
                    f"{where}: unknown {self.name} {shown}: use one of {', '.join(self.choices)}"
                )
        return value

    def _parse_bool(self, raw: Any, where: str, shown: str) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE:
            return True
        if isinstance(raw, str) and raw.strip().lower() in _FALSE:
            return False
        raise ConnectionConfigError(f"{where} = {shown} is not a boolean: use true or false")

    def _parse_number(self, raw: Any, where: str, shown: str) -> int | float:
        kind_name = "a whole number" if self.kind is int else "a number"
        number: int | float
        try:
            if isinstance(raw, bool):
                raise ValueError("a boolean is not a number")
            number = float(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            raise ConnectionConfigError(f"{where} = {shown} is not {kind_name}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConnectionConfigError(f"{where} = {shown} is not {kind_name}")
        if self.kind is int:
            if not number.is_integer():
                raise ConnectionConfigError(f"{where} = {shown} is not {kind_name}")
            number = int(number)
        if self.minimum is not None and number < self.minimum:
            raise ConnectionConfigError(f"{where} = {number} is below the minimum {self.minimum:g}")
        if self.maximum is not None and number > self.maximum:
            raise ConnectionConfigError(f"{where} = {number} is above the maximum {self.maximum:g}")
        return number


def read_extras(fields: Sequence[ExtraField], extra: Mapping[str, Any] | None, conn_id: str) -> dict[str, Any]:
    """Parse every declared extra of a connection; missing, ``null`` and empty values become the defaults.

    :param fields: the declared extras (:data:`ATLASSIAN_EXTRAS` or :data:`QRADAR_EXTRAS`).
    :param extra: the connection's ``extra_dejson`` (may be ``None``).
    :param conn_id: the connection id, for error messages.
    :raises ConnectionConfigError: for the first value that cannot be used, naming its extra.
    """
    if extra is not None and not isinstance(extra, Mapping):
        raise ConnectionConfigError(
            f"connection {conn_id!r}: extra must be a JSON object such as {{}}, not {type(extra).__name__}"
        )
    extra = extra or {}
    return {field.name: field.parse(extra.get(field.name), conn_id) for field in fields}


def conn_fields(fields: Sequence[ExtraField]) -> dict[str, dict[str, Any]]:
    """The ``conn-fields`` mapping of ``get_provider_info`` for one connection type."""
    return {field.name: field.conn_field() for field in fields}


ATLASSIAN_EXTRAS: tuple[ExtraField, ...] = (
    ExtraField(
        "page_size",
        int,
        "Page size",
        "Events requested per API call (limit); 200 is used if the API refuses it.",
        default=500,
        minimum=1,
        maximum=1000,
    ),
    ExtraField(
        "stream_requests_per_minute",
        float,
        "events-stream requests per minute",
        "Pacing for /events-stream (Atlassian documents 50 per path).",
        default=50.0,
        minimum=0,
    ),
    ExtraField(
        "events_requests_per_minute",
        float,
        "events requests per minute",
        "Pacing for filtered /events queries (Atlassian documents 10).",
        default=10.0,
        minimum=0,
    ),
    ExtraField("timeout", float, "Request timeout (s)", "Per HTTP request.", default=60.0, minimum=0.1),
    ExtraField(
        "max_retries",
        int,
        "Retries per request",
        "For 429, 5xx, resets and timeouts, before the task fails.",
        default=8,
        minimum=0,
    ),
    ExtraField(
        "request_deadline",
        float,
        "Request deadline (s)",
        "Total time one API request may take, headers and body (the timeout above bounds each read only).",
        default=180.0,
        minimum=0.1,
    ),
    ExtraField(
        "max_response_bytes",
        int,
        "Max response bytes",
        "Largest decoded API response accepted; bounds memory against huge or compressed-bomb bodies.",
        default=32 * 1024 * 1024,
        minimum=1024,
    ),
    ExtraField(
        "allow_insecure_http",
        bool,
        "Allow plain http",
        "Send the API key over plain http to a host that is not loopback (refused otherwise).",
        default=False,
    ),
)

QRADAR_EXTRAS: tuple[ExtraField, ...] = (
    ExtraField(
        "protocol",
        str,
        "Protocol",
        "tcp, tls, udp, or http/https (QRadar HTTP Receiver).",
        default="tcp",
        choices=QRADAR_PROTOCOLS,
    ),
    ExtraField(
        "log_source_identifier",
        str,
        "Log source identifier",
        "Written as the syslog HOSTNAME; QRadar routes events to the log source with this identifier.",
        default="Atlassian-AuditLogs",
    ),
    ExtraField("framing", str, "Framing (tcp/tls)", "lf or octet-counting.", default="lf", choices=FRAMINGS),
    ExtraField("syslog_format", str, "Syslog header", "rfc5424 or rfc3164.", default="rfc5424", choices=SYSLOG_FORMATS),
    ExtraField(
        "max_frame_bytes",
        int,
        "Max frame bytes",
        "Keep at or below QRadar's Max TCP Syslog Payload Length.",
        default=4096,
        minimum=512,
    ),
    ExtraField(
        "ca_cert",
        str,
        "CA certificate (PEM text or path)",
        "Certificate authority that signed the QRadar listener's certificate.",
    ),
    ExtraField("client_cert", str, "Client certificate (PEM text or path)", "For TLS with client authentication."),
    ExtraField(
        "client_key",
        str,
        "Client private key (PEM text or path)",
        "Stored encrypted with the connection; never logged.",
        secret=True,
    ),
    ExtraField("verify", bool, "Verify the server certificate", "Turning it off is logged as a warning.", default=True),
    ExtraField("time_zone", str, "Time zone", "IANA zone of syslog header times and ISO time keys.", default="UTC"),
    ExtraField(
        "batch_size",
        int,
        "Batch size",
        "Events per write (tcp/tls, default 200) or per POST (http/https, default 500).",
        minimum=1,
    ),
    ExtraField("connect_timeout", float, "Connect timeout (s)", "Per connection attempt.", default=10.0, minimum=0.1),
    ExtraField("write_timeout", float, "Write timeout (s)", "Per write or POST.", default=30.0, minimum=0.1),
    ExtraField(
        "max_reconnects",
        int,
        "Reconnect attempts (tcp/tls)",
        "Before the task fails (its retry resumes from the checkpoint).",
        default=10,
        minimum=0,
    ),
    ExtraField(
        "confirm_delivery",
        bool,
        "Receipt per page (tcp/tls)",
        "After each page, close the connection and wait for QRadar to close its side: proof it read every event, "
        "so a drop re-sends at most one page and loses nothing. Off only for a receiver that keeps connections "
        "open after end-of-data.",
        default=True,
    ),
    ExtraField(
        "receiver_buffer_bytes",
        int,
        "Replay after a drop without receipts (bytes, tcp/tls)",
        "Only when receipts are off: recent frames re-sent after a dropped connection, for what the receiver had "
        "accepted but not read. Best effort.",
        default=DEFAULT_RECEIVER_BUFFER_BYTES,
        minimum=0,
    ),
)

# The port stays visible: Airflow 3.3.2's Test icon sends an empty port as 0 and then refuses the test ("The host
# or port to test differs from the stored connection"), so a connection needs one (443; the URL's own port wins).
ATLASSIAN_FORM: dict[str, Any] = {
    "hidden_fields": ["schema"],
    "relabeling": {"host": "API base URL", "login": "Organization ID", "password": "API key"},
    "placeholders": {
        "host": DEFAULT_ATLASSIAN_BASE_URL,
        "port": "443 (Airflow's Test button needs a port; a port in the URL wins)",
        "login": "your organization id (admin.atlassian.com > Settings > API keys)",
        "password": "organization API key with scope read:events:admin",
        "extra": '{"page_size": 200, "stream_requests_per_minute": 50}',
    },
}

QRADAR_FORM: dict[str, Any] = {
    "hidden_fields": ["schema", "login"],
    "relabeling": {"host": "QRadar event collector host", "password": "Client key passphrase"},
    "placeholders": {
        "host": "qradar-ec.example.com",
        "port": "514 (tcp/udp), 6514 (tls), 12469 (http/https)",
        "extra": '{"protocol": "tls", "log_source_identifier": "Atlassian-AuditLogs"}',
    },
}


def ui_field_behaviour(form: Mapping[str, Any]) -> dict[str, Any]:
    """The same form behaviour in ``get_provider_info``'s kebab-case keys (``hidden-fields``, ...)."""
    return {key.replace("_", "-"): value for key, value in form.items()}
