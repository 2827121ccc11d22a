"""The shipped DAG on real Airflow 3 (SQLite, temporary AIRFLOW_HOME), the simulator and a real syslog-ng.

- `airflow dags test` over consecutive windows;
- the real scheduler: a 24-window backfill created through `POST /api/v2/backfills` (what the UI does);
- a receiver outage in the middle of a window: Airflow's retry resumes from the task-state-store checkpoint;
- the README's example DAG, executed with `airflow dags test`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from airflow_provider_atlassian_qradar.windows import parse_timestamp_ms, to_epoch_ms
from sandbox.airflow_stack import AirflowHome, AirflowServices, airflow_services
from sandbox.atlassian_sim import SimulatorConfig, generate_events, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng

pytestmark = pytest.mark.airflow_e2e

DAG_ID = "atlassian_audit_to_qradar"
API_KEY = "e2e-key-MUST-NOT-LEAK"
ORG = "org-e2e"
NOW_HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def in_window(events: list[dict], low: datetime, high: datetime, clock: str) -> int:
    """How many generated events the API returns for [low, high) under ``clock``, counted from the generator."""
    key = "processedAt" if clock == "processed" else "time"
    low_ms, high_ms = to_epoch_ms(low), to_epoch_ms(high)
    return sum(low_ms <= parse_timestamp_ms(e["attributes"][key]) < high_ms for e in events)


def received_ids(lines: list[str]) -> Counter[str]:
    return Counter(parse_leef(line[line.index("LEEF:") :])[1]["eventId"] for line in lines)


def connections(sim_url: str, receiver_port: int, page_size: int | None = None, **qradar_extra) -> dict[str, str]:
    extra = {"protocol": "tcp", "log_source_identifier": "Atlassian-AuditLogs", **qradar_extra}
    atlassian_extra = {"page_size": page_size} if page_size else {}
    return {
        ATLASSIAN_CONN_VAR: atlassian_connection(sim_url, ORG, API_KEY, **atlassian_extra),
        QRADAR_CONN_VAR: qradar_connection(receiver_port, **extra),
    }


@pytest.fixture
def syslog_ng(tmp_path):
    require_syslog_ng()
    with SyslogNg(tmp_path, "tcp") as receiver:
        yield receiver


class TestDagsTest:
    def test_consecutive_windows_deliver_exactly_the_ground_truth(self, migrated_airflow_home, syslog_ng, filter_clock):
        first = NOW_HOUR - timedelta(hours=30)
        config = SimulatorConfig(
            filter_clock=filter_clock,
            org_id=ORG,
            api_key=API_KEY,
            start=first - timedelta(hours=2),
            end=first + timedelta(hours=5),
            events_per_hour=250,
            seed=3,
            hostile_ratio=0.05,
        )
        with run_in_thread(config) as sim:
            env = connections(sim.base_url, syslog_ng.port)
            env["ATLASSIAN_QRADAR_START_DATE"] = (first - timedelta(days=1)).isoformat()
            home = replace(migrated_airflow_home, extra_env=env)
            for hour in range(3):
                # `dags test DATE` runs the last complete interval ending at DATE: [DATE-1h, DATE).
                logical = first + timedelta(hours=hour + 1)
                result = home.cli("dags", "test", DAG_ID, logical.isoformat(), timeout=300)
                assert "failed" not in result.stdout.lower().split("dagrun finished")[-1], result.stdout[-3000:]
            truth = sim.ground_truth(first, first + timedelta(hours=3))
            got = received_ids(syslog_ng.wait_for_lines(len(truth)))
        assert len(truth) == in_window(generate_events(config), first, first + timedelta(hours=3), filter_clock)
        assert filter_clock == "processed" or len(truth) == 750
        assert set(got) == set(truth), f"missing {len(set(truth) - set(got))}, unexpected {len(set(got) - set(truth))}"
        assert max(got.values()) == 1, "an event arrived twice"
        for line in syslog_ng.lines()[:5]:
            assert " Atlassian-AuditLogs LEEF:2.0|Atlassian|Organization Audit Log|" in line

    def test_recent_window_waits_for_late_events_by_deferral(self, migrated_airflow_home, syslog_ng, filter_clock):
        now = datetime.now(timezone.utc)
        window_end = now.replace(minute=0, second=0, microsecond=0)
        # The settle time ends ~60 s from now (the CLI takes 10-40 s to reach the task on a busy machine), so the
        # run must defer and come back, not read at once.
        settle_minutes = ((now - window_end).total_seconds() + 60) / 60
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=window_end - timedelta(hours=1),
            end=window_end,
            events_per_hour=120,
            seed=8,
            processing_lag_max_seconds=5,
            filter_clock=filter_clock,
        )
        with run_in_thread(config) as sim:
            env = connections(sim.base_url, syslog_ng.port)
            env["ATLASSIAN_QRADAR_START_DATE"] = (window_end - timedelta(days=1)).isoformat()
            env["ATLASSIAN_QRADAR_SETTLE_MINUTES"] = f"{settle_minutes:.4f}"
            home = replace(migrated_airflow_home, extra_env=env)
            started = time.monotonic()
            result = home.cli("dags", "test", DAG_ID, now.isoformat(), timeout=300)
            elapsed = time.monotonic() - started
            truth = sim.ground_truth(window_end - timedelta(hours=1), window_end)
            got = received_ids(syslog_ng.wait_for_lines(len(truth)))
        assert "for late audit events, deferred" in result.stdout, result.stdout[-3000:]
        assert elapsed >= 15, "the run should have waited for the settle time"
        assert set(got) == set(truth) and max(got.values()) == 1

    def test_readme_example_dag_runs(self, migrated_airflow_home, syslog_ng, tmp_path):
        # The example runs every 6 hours: `dags test` covers the 6-hour interval ending at an aligned time.
        window_end = NOW_HOUR - timedelta(hours=6)
        window_end = window_end.replace(hour=window_end.hour - window_end.hour % 6)
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=window_end - timedelta(hours=7),
            end=window_end,
            events_per_hour=60,
            seed=4,
            events_requests_per_minute=0,
        )
        archive = Path(__file__).resolve().parents[1] / "examples"
        with run_in_thread(config) as sim:
            env = connections(sim.base_url, syslog_ng.port)
            env["EXAMPLE_ARCHIVE_PATH"] = f"file://{tmp_path}/archive"
            home = replace(migrated_airflow_home, extra_env=env, dags_folder=archive)
            home.cli("dags", "test", "security_audit_logins_to_qradar", window_end.isoformat(), timeout=300)
            logins = {
                e["id"]
                for e in sim.events_between(window_end - timedelta(hours=6), window_end)
                if e["attributes"]["action"] == "user_login"
            }
            got = received_ids(syslog_ng.wait_for_lines(len(logins)))
        assert logins and set(got) == logins
        for line in syslog_ng.lines():
            assert " Atlassian-Logins LEEF:" in line
        assert list((tmp_path / "archive").rglob("*.jsonl.gz")), "the example archives raw events"


class TestScheduler:
    @pytest.mark.timeout(1800)  # room for up to two scheduler restarts (SQLite wedge) on a loaded machine
    def test_backfill_via_rest_api_then_a_retry_resumes_after_a_receiver_outage(
        self, tmp_path, syslog_ng, filter_clock
    ):
        backfill_first = NOW_HOUR - timedelta(hours=48)
        big_window = NOW_HOUR - timedelta(hours=60)
        # A busy hour (1,000 events: five pages) well before the backfill range, for the outage part.
        busy_hour = generate_events(
            SimulatorConfig(
                org_id=ORG,
                api_key=API_KEY,
                start=big_window,
                end=big_window + timedelta(hours=1),
                events_per_hour=1000,
                seed=99,
            )
        )
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=backfill_first,
            end=backfill_first + timedelta(hours=24),
            events_per_hour=150,
            seed=9,
            hostile_ratio=0.02,
            extra_events=tuple(busy_hour),
            filter_clock=filter_clock,
        )
        with run_in_thread(config) as sim:
            # Pages of 200: the busy hour is five pages, so the outage can strike after the third.
            env = connections(sim.base_url, syslog_ng.port, page_size=200, max_reconnects=1, batch_size=50)
            # Catchup has nothing to do (the DAG starts tomorrow, whenever the hour turns); history is backfilled.
            env["ATLASSIAN_QRADAR_START_DATE"] = (NOW_HOUR + timedelta(days=1)).isoformat()
            home = AirflowHome(tmp_path / "airflow-home", extra_env=env)
            home.migrate()
            with airflow_services(home) as airflow:
                airflow.wait_for_dag(DAG_ID)
                backfill = airflow.create_backfill(
                    DAG_ID,
                    backfill_first.isoformat(),
                    (backfill_first + timedelta(hours=23)).isoformat(),
                    max_active_runs=4,
                    reprocess_behavior="none",
                )
                assert backfill["dag_id"] == DAG_ID
                # The SQLite scheduler wedge (docs/deployment.md) is restarted as a supervisor would; counted below.
                runs = airflow.wait_for_runs(DAG_ID, 24, timeout=700, restart_stalled_scheduler_after=120)
                assert len(runs) == 24
                assert {r["state"] for r in runs} == {"success"}, [(r["dag_run_id"], r["state"]) for r in runs]
                truth = sim.ground_truth(backfill_first, backfill_first + timedelta(hours=24))
                got = received_ids(syslog_ng.wait_for_lines(len(truth)))
                span = (backfill_first, backfill_first + timedelta(hours=24))
                assert len(truth) == in_window(generate_events(config), *span, filter_clock)
                assert filter_clock == "processed" or len(truth) == 24 * 150
                assert set(got) == set(truth) and max(got.values()) == 1
                airflow.wait_for_backfill(backfill["id"])

                # Reprocess "completed" (the UI's "All Runs") re-delivers windows that already succeeded.
                lines_before = len(syslog_ng.lines())
                again = airflow.create_backfill(
                    DAG_ID,
                    backfill_first.isoformat(),
                    (backfill_first + timedelta(hours=1)).isoformat(),
                    max_active_runs=2,
                    reprocess_behavior="completed",
                )
                airflow.wait_for_backfill(again["id"])
                redelivered_truth = sim.ground_truth(backfill_first, backfill_first + timedelta(hours=2))
                redelivered = received_ids(
                    syslog_ng.wait_for_lines(lines_before + len(redelivered_truth))[lines_before:]
                )
                assert set(redelivered) == set(redelivered_truth) and max(redelivered.values()) == 1

                # A busy hour whose delivery loses its receiver half-way: the task fails, Airflow retries it,
                # and the retry resumes from the checkpoint (at most one page delivered twice).
                sim.faults.update(slow_seconds=0.4)
                lines_before = len(syslog_ng.lines())
                before = len(sim.requests)
                airflow.create_backfill(
                    DAG_ID, big_window.isoformat(), big_window.isoformat(), max_active_runs=1, reprocess_behavior="none"
                )
                outage = threading.Thread(
                    target=_outage_after_pages, args=(sim, syslog_ng, before, 3, airflow, big_window)
                )
                outage.start()
                runs = airflow.wait_for_runs(DAG_ID, 25, timeout=700, restart_stalled_scheduler_after=120)
                outage.join()
                sim.faults.update(slow_seconds=0)
                run = next(r for r in runs if r["data_interval_start"].startswith(big_window.strftime("%Y-%m-%dT%H")))
                assert run["state"] == "success"
                tries = airflow.api(
                    "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/deliver_audit_events"
                )["try_number"]
                assert tries >= 2, "the outage should have failed the first try"
                summary = airflow.api(
                    "GET",
                    f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/deliver_audit_events"
                    "/xcomEntries/return_value",
                )["value"]
                truth = sim.ground_truth(big_window, big_window + timedelta(hours=1))
                got = received_ids(syslog_ng.wait_for_lines(lines_before + len(truth))[lines_before:])
        print(f"scheduler restarts (SQLite wedge): {airflow.scheduler_restarts}")
        assert len(truth) == in_window(busy_hour, big_window, big_window + timedelta(hours=1), filter_clock)
        assert filter_clock == "processed" or len(truth) == 1000
        summary = json.loads(summary) if isinstance(summary, str) else summary
        assert summary["resumed_after"] > 0, summary
        assert set(got) == set(truth), f"missing {len(set(truth) - set(got))}"
        assert sum(got.values()) - len(truth) <= 200, "more than one page delivered twice"


def _outage_after_pages(
    sim, receiver: SyslogNg, requests_before: int, pages: int, airflow: AirflowServices, window: datetime
) -> None:
    """Stop the receiver once the task has read a few pages; start it again once the first try has ended.

    The end is observed, not timed: with paced requests (one every 60 / (50 / api_slots) s) a fixed outage
    shorter than the pacing interval can fall between two deliveries and fail nothing.
    """
    deadline = time.monotonic() + 300
    while (
        time.monotonic() < deadline
        and sum(1 for r in sim.requests[requests_before:] if r.path.endswith("events-stream")) < pages
    ):
        time.sleep(0.05)
    receiver.stop()
    try:
        deadline = time.monotonic() + 300
        hour = window.strftime("%Y-%m-%dT%H")
        while time.monotonic() < deadline:
            try:
                run = next((r for r in airflow.dag_runs(DAG_ID) if r["data_interval_start"].startswith(hour)), None)
                ti = run and airflow.api(
                    "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/deliver_audit_events"
                )
            except (RuntimeError, requests.RequestException):  # SQLite busy under the scheduler: ask again
                ti = None
            if ti and (ti["try_number"] >= 2 or ti["state"] in ("up_for_retry", "failed")):
                return
            time.sleep(1)
    finally:
        receiver.start()
