"""The README's "reuse the operator" example, executed by tests/integration/test_dag_e2e.py.

Keep it identical to the README block except for the archive path, which the test points at a temporary folder.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator

with DAG(
    "security_audit_logins_to_qradar",
    schedule=CronDataIntervalTimetable("0 */6 * * *", timezone="UTC"),  # not "@hourly": zero-width intervals
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=True,
    max_active_runs=2,
):
    AtlassianAuditLogToQRadarOperator(
        task_id="logins_to_qradar",
        action="user_login",  # any filter uses /events (10 requests/min)
        log_source_identifier="Atlassian-Logins",  # a separate QRadar log source
        archive_path=os.environ.get("EXAMPLE_ARCHIVE_PATH", "file:///var/lib/audit-archive"),  # gzipped JSON Lines
        max_window=timedelta(hours=6),
        requests_per_minute={"events": 5},  # this DAG's share of the API budget
    )
