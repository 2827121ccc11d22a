"""One API budget for every run, under the real scheduler.

Two DAGs read the same organization through one Airflow pool of 4 slots; DAG ``budget_a`` also gets a backfill
while its catchup runs. The simulator enforces 12 stream requests a minute and each task paces at 12/4: no
request may be refused (0 x 429), and each DAG delivers every event of its hours once. A third DAG names a pool
that does not exist: none of its tasks may start, and Airflow must say why (the task instance's unmet
dependencies, shown by the UI and by the REST API, name the missing pool).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox.airflow_stack import AirflowHome, airflow_services
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng

pytestmark = pytest.mark.airflow_e2e

API_KEY = "budget-key-NEVER-LOGGED"
ORG = "org-budget"
CATCHUP_HOURS = 6
BACKFILL_HOURS = 6


def received_ids(lines: list[str]) -> Counter[str]:
    return Counter(parse_leef(line[line.index("LEEF:") :])[1]["eventId"] for line in lines)


def test_catchup_backfill_and_a_second_dag_share_one_budget(tmp_path: Path) -> None:
    require_syslog_ng()
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = now_hour - timedelta(hours=CATCHUP_HOURS)
    backfill_first = now_hour - timedelta(days=3)
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=backfill_first - timedelta(hours=1),
        end=now_hour,
        events_per_hour=40,
        seed=31,
        processing_lag_max_seconds=5,
        stream_requests_per_minute=12,
        events_requests_per_minute=0,
    )
    with (
        run_in_thread(config) as sim,
        SyslogNg(tmp_path / "a", "tcp") as receiver_a,
        SyslogNg(tmp_path / "b", "tcp") as receiver_b,
    ):
        env = {
            "BUDGET_TEST_START": start.isoformat(),
            "ATLASSIAN_QRADAR_SETTLE_MINUTES": "0",
            ATLASSIAN_CONN_VAR: atlassian_connection(sim.base_url, ORG, API_KEY),
        }
        for name, receiver in (("A", receiver_a), ("B", receiver_b)):
            env[f"AIRFLOW_CONN_QRADAR_{name}"] = qradar_connection(receiver.port)
        home = AirflowHome(tmp_path / "airflow-home", extra_env=env, dags_folder=Path(__file__).parent / "budget_dags")
        home.migrate()
        home.cli("pools", "set", "atlassian_api_test", "4", "one Atlassian organization's API budget")
        with airflow_services(home) as airflow:
            for dag_id in ("budget_a", "budget_b", "budget_orphan"):
                airflow.wait_for_dag(dag_id)
            airflow.create_backfill(
                "budget_a",
                backfill_first.isoformat(),
                (backfill_first + timedelta(hours=BACKFILL_HOURS - 1)).isoformat(),
                max_active_runs=16,
                reprocess_behavior="none",
            )
            runs_a = airflow.wait_for_runs("budget_a", CATCHUP_HOURS + BACKFILL_HOURS, timeout=900)
            runs_b = airflow.wait_for_runs("budget_b", CATCHUP_HOURS, timeout=900)
            orphan = airflow.api("POST", "/api/v2/dags/budget_orphan/dagRuns", json={"logical_date": None})
            time.sleep(15)
            ti_path = f"/api/v2/dags/budget_orphan/dagRuns/{orphan['dag_run_id']}/taskInstances/deliver_audit_events"
            orphan_state = airflow.api("GET", ti_path)["state"]
            why = airflow.api("GET", f"{ti_path}/dependencies")
    stream = [record for record in sim.requests if record.path.endswith("/events-stream")]
    refused = [record for record in stream if record.status == 429]
    assert {r["state"] for r in runs_a + runs_b} == {"success"}
    assert not refused, f"{len(refused)} of {len(stream)} stream requests got 429"
    hours_a = [(start, now_hour), (backfill_first, backfill_first + timedelta(hours=BACKFILL_HOURS))]
    truth_a = {i for low, high in hours_a for i in sim.ground_truth(low, high)}
    got_a, got_b = received_ids(receiver_a.lines()), received_ids(receiver_b.lines())
    assert set(got_a) == truth_a and max(got_a.values()) == 1
    assert set(got_b) == set(sim.ground_truth(start, now_hour)) and max(got_b.values()) == 1
    assert orphan_state in (None, "scheduled"), orphan_state
    reasons = " ".join(dep["reason"] for dep in why["dependencies"])
    assert "non-existent pool 'no_such_pool'" in reasons, why
    print(f"{len(stream)} stream requests, 0 x 429; the orphan task is {orphan_state}: {reasons}")
