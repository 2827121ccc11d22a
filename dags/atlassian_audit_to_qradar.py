"""Hourly delivery of the Atlassian organization audit log to IBM QRadar.

Settings: connections ``atlassian_admin_default`` and ``qradar_default``; environment variables
ATLASSIAN_QRADAR_START_DATE, ATLASSIAN_QRADAR_TIMEZONE, ATLASSIAN_QRADAR_SETTLE_MINUTES, ATLASSIAN_QRADAR_QUERY.
For several organizations, call build_audit_dag once per organization with its own dag_id and connections.
"""

from __future__ import annotations

from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

dag = build_audit_dag("atlassian_audit_to_qradar")
