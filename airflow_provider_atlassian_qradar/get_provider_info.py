"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_atlassian_qradar import __version__
from airflow_provider_atlassian_qradar.connection_fields import (
    ATLASSIAN_EXTRAS,
    ATLASSIAN_FORM,
    QRADAR_EXTRAS,
    QRADAR_FORM,
    conn_fields,
    ui_field_behaviour,
)


def get_provider_info() -> dict[str, Any]:
    """Return the provider description: name, version and the connection types with their UI forms.

    The forms come from :mod:`airflow_provider_atlassian_qradar.connection_fields`, the same tables the hooks parse
    their connections with, so the defaults shown are the defaults used.
    """
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
                "ui-field-behaviour": ui_field_behaviour(ATLASSIAN_FORM),
                "conn-fields": conn_fields(ATLASSIAN_EXTRAS),
            },
            {
                "connection-type": "qradar",
                "hook-class-name": "airflow_provider_atlassian_qradar.hooks.qradar.QRadarHook",
                "hook-name": "IBM QRadar (syslog / HTTP Receiver)",
                "ui-field-behaviour": ui_field_behaviour(QRADAR_FORM),
                "conn-fields": conn_fields(QRADAR_EXTRAS),
            },
        ],
    }
