"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_atlassian_qradar import __version__


def get_provider_info() -> dict[str, Any]:
    """Return the provider description: name, version and the connection types with their UI forms."""
    return {
        "package-name": "airflow-provider-atlassian-qradar",
        "name": "Atlassian audit log to IBM QRadar",
        "description": "Ship the Atlassian Cloud organization audit log to IBM QRadar as LEEF 2.0 events.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "atlassian_admin",
                "hook-class-name": "airflow_provider_atlassian_qradar.hooks.atlassian.AtlassianAuditLogHook",
                "hook-name": "Atlassian Organization Admin API",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "API base URL", "login": "Organization ID", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.atlassian.com",
                        "login": "your organization id (admin.atlassian.com > Settings > API keys)",
                        "password": "organization API key with scope read:events:admin",
                        "extra": '{"page_size": 200, "stream_requests_per_minute": 50}',
                    },
                },
                "conn-fields": {
                    "page_size": {
                        "label": "Page size",
                        "description": "Events requested per API call (limit). Default 200.",
                        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
                    },
                    "stream_requests_per_minute": {
                        "label": "events-stream requests per minute",
                        "description": "Pacing for /events-stream (Atlassian documents 50 per path). Default 50.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                    "events_requests_per_minute": {
                        "label": "events requests per minute",
                        "description": "Pacing for filtered /events queries (Atlassian documents 10). Default 10.",
                        "schema": {"type": ["number", "null"], "minimum": 0},
                    },
                },
            },
            {
                "connection-type": "qradar",
                "hook-class-name": "airflow_provider_atlassian_qradar.hooks.qradar.QRadarHook",
                "hook-name": "IBM QRadar (syslog / HTTP Receiver)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"host": "QRadar event collector host", "password": "Client key passphrase"},
                    "placeholders": {
                        "host": "qradar-ec.example.com",
                        "port": "514 (tcp/udp), 6514 (tls), 12469 (http/https)",
                        "extra": '{"protocol": "tls", "log_source_identifier": "Atlassian-AuditLogs"}',
                    },
                },
                "conn-fields": {
                    "protocol": {
                        "label": "Protocol",
                        "description": "tcp (default), tls, udp, http or https (QRadar HTTP Receiver).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["tcp", "tls", "udp", "http", "https", None],
                        },
                    },
                    "log_source_identifier": {
                        "label": "Log source identifier",
                        "description": "Written as the syslog HOSTNAME; QRadar routes events to the log "
                        "source with this identifier. Default Atlassian-AuditLogs.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "framing": {
                        "label": "Framing (tcp/tls)",
                        "description": "lf (default) or octet-counting.",
                        "schema": {"type": ["string", "null"], "enum": ["lf", "octet-counting", None]},
                    },
                    "syslog_format": {
                        "label": "Syslog header",
                        "description": "rfc5424 (default) or rfc3164.",
                        "schema": {"type": ["string", "null"], "enum": ["rfc5424", "rfc3164", None]},
                    },
                    "max_frame_bytes": {
                        "label": "Max frame bytes",
                        "description": "Keep at or below QRadar's Max TCP Syslog Payload Length. Default 4096.",
                        "schema": {"type": ["integer", "null"], "minimum": 512},
                    },
                    "ca_cert": {
                        "label": "CA certificate (PEM text or path)",
                        "description": "Certificate authority that signed the QRadar listener's certificate.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_cert": {
                        "label": "Client certificate (PEM text or path)",
                        "description": "For TLS with client authentication.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "client_key": {
                        "label": "Client private key (PEM text or path)",
                        "description": "Stored encrypted with the connection; never logged.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "verify": {
                        "label": "Verify the server certificate",
                        "description": "Default true. Turning it off is logged as a warning.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "time_zone": {
                        "label": "Time zone",
                        "description": "IANA zone of syslog header times and ISO time keys. Default UTC.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "batch_size": {
                        "label": "Batch size",
                        "description": "Events per write (tcp/tls, default 200) or per POST (http/https, default 500).",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Default 10.",
                        "schema": {"type": ["number", "null"], "minimum": 0.1},
                    },
                    "write_timeout": {
                        "label": "Write timeout (s)",
                        "description": "Default 30.",
                        "schema": {"type": ["number", "null"], "minimum": 0.1},
                    },
                    "max_reconnects": {
                        "label": "Reconnect attempts (tcp/tls)",
                        "description": "Before the task fails (its retry resumes from the checkpoint). Default 10.",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "confirm_delivery": {
                        "label": "Receipt per page (tcp/tls)",
                        "description": "After each page, close the connection and wait for QRadar to close its side: "
                        "proof it read every event, so a drop re-sends at most one page and loses nothing. Default "
                        "true; false only for a receiver that keeps connections open after end-of-data.",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "receiver_buffer_bytes": {
                        "label": "Replay after a drop without receipts (bytes, tcp/tls)",
                        "description": "Only when receipts are off: recent frames re-sent after a dropped connection, "
                        "for what the receiver had accepted but not read. Default 262144. Best effort.",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                },
            },
        ],
    }
