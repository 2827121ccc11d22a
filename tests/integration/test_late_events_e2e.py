"""Late events under the real scheduler: events that become visible after their window's first read.

Two DAGs of 10-second windows run at once under one real Airflow (SQLite, LocalExecutor): one against a
simulator filtering on event time, one against a simulator filtering on processedAt. 10% of the events are
processed 30-50 s after they happened (the long tail), so the first read of a recent window cannot see them;
each run reads once more the window that ended 60 s before its own. Catchup starts 12 windows in the past and the
scheduler then follows the clock for 19 more windows (31 in all).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sandbox.airflow_stack import AirflowHome, airflow_services
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng

pytestmark = pytest.mark.airflow_e2e

API_KEY = "late-e2e-key-NEVER-LOGGED"
ORG = "org-late"
WINDOW = timedelta(seconds=10)
PAST_WINDOWS = 12
RECONCILED_WINDOWS = 25  # windows 0..24 are reconciled by the runs of windows 6..30
RECONCILE_SHIFT = 6  # 60 s / 10 s


def received_ids(lines: list[str]) -> Counter[str]:
    return Counter(parse_leef(line[line.index("LEEF:") :])[1]["eventId"] for line in lines)


def summary_of(airflow: Any, dag_id: str, run_id: str) -> dict[str, Any]:
    value = airflow.api(
        "GET",
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/deliver_audit_events/xcomEntries/return_value",
    )["value"]
    return json.loads(value) if isinstance(value, str) else value


def test_long_tail_events_are_delivered_once_by_reconciliation(tmp_path: Path) -> None:
    require_syslog_ng()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    first = now.replace(second=now.second - now.second % 10) - PAST_WINDOWS * WINDOW
    last_needed = first + (RECONCILED_WINDOWS + RECONCILE_SHIFT) * WINDOW
    configs = {
        clock: SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=first - timedelta(minutes=2),
            end=last_needed + timedelta(minutes=2),
            events_per_hour=3 * 3600,
            seed=21,
            processing_lag_max_seconds=4,
            late_fraction=0.1,
            late_lag_seconds=(30, 50),
            visibility_delay_seconds=1,
            stream_requests_per_minute=0,
            events_requests_per_minute=0,
            filter_clock=clock,
        )
        for clock in ("time", "processed")
    }
    with (
        run_in_thread(configs["time"]) as sim_time,
        run_in_thread(configs["processed"]) as sim_processed,
        SyslogNg(tmp_path / "r-time", "tcp") as receiver_time,
        SyslogNg(tmp_path / "r-processed", "tcp") as receiver_processed,
    ):
        sims = {"time": sim_time, "processed": sim_processed}
        receivers = {"time": receiver_time, "processed": receiver_processed}
        env = {"LATE_TEST_START": first.isoformat()}
        for clock in sims:
            env[f"AIRFLOW_CONN_ATLASSIAN_{clock.upper()}"] = atlassian_connection(sims[clock].base_url, ORG, API_KEY)
            env[f"AIRFLOW_CONN_QRADAR_{clock.upper()}"] = qradar_connection(receivers[clock].port)
        home = AirflowHome(tmp_path / "airflow-home", extra_env=env, dags_folder=Path(__file__).parent / "late_dags")
        home.migrate()
        with airflow_services(home) as airflow:
            results: dict[str, dict[str, Any]] = {}
            for clock in sims:
                dag_id = f"late_events_{clock}"
                airflow.wait_for_dag(dag_id)
            for clock in sims:
                dag_id = f"late_events_{clock}"
                deadline = time.monotonic() + 900
                while True:
                    runs = airflow.dag_runs(dag_id)
                    by_start = {r["data_interval_start"]: r for r in runs}
                    needed = [first + i * WINDOW for i in range(RECONCILED_WINDOWS + RECONCILE_SHIFT)]
                    chosen = [by_start.get(start.isoformat().replace("+00:00", "Z")) for start in needed]
                    if all(r is not None and r["state"] in ("success", "failed") for r in chosen):
                        break
                    assert time.monotonic() < deadline, f"{dag_id}: runs not done: {sorted(by_start)[:3]}..."
                    time.sleep(2)
                assert {r["state"] for r in chosen if r} == {"success"}, [
                    (r["run_id"], r["state"]) for r in chosen if r
                ]
                summaries = [summary_of(airflow, dag_id, r["dag_run_id"]) for r in chosen if r]
                results[clock] = {"summaries": summaries}
    for clock, result in results.items():
        sim, receiver = sims[clock], receivers[clock]
        summaries = result["summaries"]
        reconciled_end = first + RECONCILED_WINDOWS * WINDOW
        truth = set(sim.ground_truth(first, reconciled_end))
        # The scheduler goes on with later windows while the test reads: anything up to now may have arrived.
        everything = set(sim.ground_truth(first, datetime.now(timezone.utc)))
        got = received_ids(receiver.lines())
        assert max(got.values()) == 1, f"{clock}: an event arrived twice"
        assert truth <= set(got), f"{clock}: {len(truth - set(got))} events of reconciled windows missing"
        assert set(got) <= everything, f"{clock}: unexpected events"
        first_reads = sum(s["sent"] for s in summaries[:RECONCILED_WINDOWS])
        late = sum(s["reconcile"]["late_delivered"] for s in summaries[RECONCILE_SHIFT:])
        assert first_reads + late == len(truth), f"{clock}: first reads {first_reads} + late {late} != {len(truth)}"
        clocks = Counter(s["filter_clock"] for s in summaries)
        second_reads = [s["reconcile"]["api_requests"] for s in summaries[RECONCILE_SHIFT:]]
        print(
            f"{clock}: {len(truth)} events, {late} delivered late by reconciliation, clocks seen {dict(clocks)}, "
            f"second-read requests per window {sum(second_reads) / len(second_reads):.2f}"
        )
        if clock == "time":
            assert late > 0, "no event was late for its first read: the test did not exercise reconciliation"
            assert clocks["processed"] == 0
        else:
            assert late == 0, "under the processed clock late events belong to later windows"
            assert clocks["time"] == 0
