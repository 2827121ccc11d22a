"""DAGs for the shared-budget scheduler test (tests/integration/test_api_budget_e2e.py).

``budget_a`` and ``budget_b`` read the same organization through one pool; ``budget_orphan`` names a pool that
does not exist. The budget is 12 stream requests a minute, the simulator's limit in that test.
"""

from __future__ import annotations

import os

import pendulum

from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

START = pendulum.parse(os.environ["BUDGET_TEST_START"])
BUDGET = {"events-stream": 12.0}

for name in ("budget_a", "budget_b"):
    globals()[name] = build_audit_dag(
        name,
        qradar_conn_id=f"qradar_{name[-1]}",
        start_date=START,  # type: ignore[arg-type]
        api_pool="atlassian_api_test",
        requests_per_minute=BUDGET,
        reconcile_after=pendulum.duration(0),
    )
budget_orphan = build_audit_dag(
    "budget_orphan",
    qradar_conn_id="qradar_a",
    start_date=START,  # type: ignore[arg-type]
    api_pool="no_such_pool",
    catchup=False,
)
