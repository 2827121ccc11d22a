"""Two audit DAGs of 10-second windows, one per simulated filter clock, for the late-event scheduler test.

Read by tests/integration/test_late_events_e2e.py (the start date and connections come from its environment).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

START = pendulum.parse(os.environ["LATE_TEST_START"])

for clock in ("time", "processed"):
    globals()[f"late_events_{clock}"] = build_audit_dag(
        f"late_events_{clock}",
        atlassian_conn_id=f"atlassian_{clock}",
        qradar_conn_id=f"qradar_{clock}",
        start_date=START,  # type: ignore[arg-type]
        window=timedelta(seconds=10),
        settle=timedelta(0),
        reconcile_after=timedelta(seconds=60),
        max_active_runs=4,
        retries=2,
        requests_per_minute={"events-stream": 0, "events": 0},
        operator_kwargs={"visibility_gap": timedelta(seconds=5)},
    )
