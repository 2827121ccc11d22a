"""
Backfill through the real scheduler: 7 days (168 hourly windows) of the shipped DAG against the rate-limited API.

Airflow 3 runs from a throw-away AIRFLOW_HOME (SQLite, LocalExecutor; ``sandbox.airflow_stack``); the simulator
enforces 50 requests/min on ``events-stream``; a real syslog-ng receives the LEEF lines. The backfill is created
through ``POST /api/v2/backfills`` with the DAG's defaults (``max_active_runs=4``, each window with 1/4 of the
budget). Wall time runs from the backfill request to the last run finishing; the anchor is the rate-limit bound,
``total successful events-stream requests / 50 per minute``, measured in the same run. Target: <= 1.5x.

Run: ``python -m bench.backfill [--windows 168] [--events-per-hour 300]``.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.pipeline import API_KEY, ORG

DAG_ID = "atlassian_audit_to_qradar"
STREAM_LIMIT_PER_MINUTE = 50
RATIO_TARGET = 1.5
_EVENT_ID = re.compile(rb"\teventId=([^\t\n]+)")


def run(
    windows: int = 168,
    events_per_hour: int = 300,
    stream_rpm: int = STREAM_LIMIT_PER_MINUTE,
    database: str = "sqlite",
) -> dict[str, Any]:
    """
    Backfill ``windows`` hours of ``events_per_hour`` events and compare its wall time with the rate-limit bound.

    :param windows: hourly windows (168 = 7 days).
    :param events_per_hour: events per window (300 = two pages of the default 200: 2 requests per window).
    :param stream_rpm: the simulator's events-stream limit per minute.
    :param database: ``sqlite`` (the issue's setting) or ``postgres`` (a throw-away PostgreSQL from
        sandbox/services.py, still with the LocalExecutor), to tell SQLite limits from the pipeline's.
    """
    from airflow_provider_atlassian_qradar.dag_factory import DEFAULT_MAX_ACTIVE_RUNS
    from sandbox.airflow_stack import AirflowHome, airflow_services
    from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
    from sandbox.receivers import SyslogNg

    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = now_hour - timedelta(hours=windows + 24)  # ends a day ago: all events processed, nothing deferred
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=first,
        end=first + timedelta(hours=windows),
        events_per_hour=events_per_hour,
        seed=11,
        stream_requests_per_minute=stream_rpm,
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-backfill-") as scratch,
        run_in_thread(config) as sim,
        ExitStack() as services,
    ):
        directory = Path(scratch)
        database_env: dict[str, str] = {}
        if database == "postgres":
            from sandbox.services import Postgres

            postgres = services.enter_context(Postgres())
            database_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = postgres.url("postgresql+psycopg2")
        with SyslogNg(directory, "tcp") as receiver:
            env = {
                "AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT": json.dumps(
                    {"conn_type": "atlassian_admin", "host": sim.base_url, "login": ORG, "password": API_KEY}
                ),
                "AIRFLOW_CONN_QRADAR_DEFAULT": json.dumps(
                    {"conn_type": "qradar", "host": "127.0.0.1", "port": receiver.port, "extra": {"protocol": "tcp"}}
                ),
                # Catchup has nothing to do (the DAG starts tomorrow, even if the hour turns); history is backfilled.
                "ATLASSIAN_QRADAR_START_DATE": (now_hour + timedelta(days=1)).isoformat(),
                # Airflow's default: the sandbox's 8 task processes would leave 2 of the DAG's 10 API slots idle.
                "AIRFLOW__CORE__PARALLELISM": "32",
                **database_env,
            }
            home = AirflowHome(directory / "airflow-home", extra_env=env)
            home.migrate()
            with airflow_services(home) as airflow:
                airflow.wait_for_dag(DAG_ID)
                sim.reset_counters()
                started = time.monotonic()
                started_epoch = time.time()
                backfill = airflow.create_backfill(
                    DAG_ID,
                    first.isoformat(),
                    (first + timedelta(hours=windows - 1)).isoformat(),
                    max_active_runs=DEFAULT_MAX_ACTIVE_RUNS,  # the DAG's default, as the UI's backfill form offers
                    reprocess_behavior="none",
                )
                print(f"  backfill bench: {windows} windows created (backfill {backfill['id']})", flush=True)
                runs, scheduler_restarts = _wait_for_runs(airflow, windows, timeout=max(600, windows * 10))
                wall = time.monotonic() - started
                max_active_runs = backfill.get("max_active_runs")
            truth = set(sim.ground_truth(first, first + timedelta(hours=windows)))
            receiver.wait_for_lines(len(truth), timeout=60)
            received = _EVENT_ID.findall(receiver.output.read_bytes()) if receiver.output.exists() else []
        stream = [record for record in sim.requests if record.path.endswith("/events-stream")]
    allowed = [record for record in stream if record.status == 200]
    bound = len(allowed) / stream_rpm * 60.0
    received_ids = {value.decode() for value in received}
    api_span = (max(r.at for r in allowed) - started_epoch) if allowed else 0.0
    return {
        "database": database,
        "windows": windows,
        "events_per_window": events_per_hour,
        "max_active_runs": max_active_runs,
        "runs_succeeded": sum(1 for run in runs if run["state"] == "success"),
        "events_expected": len(truth),
        "events_received": len(received),
        "events_missing": len(truth - received_ids),
        "events_duplicated": len(received) - len(received_ids),
        "stream_requests_ok": len(allowed),
        "stream_requests_429": len(stream) - len(allowed),
        "simulator_limit_rpm": stream_rpm,
        "wall_seconds": round(wall, 1),
        "last_request_after_seconds": round(api_span, 1),
        "rate_limit_bound_seconds": round(bound, 1),
        "ratio_wall_to_bound": round(wall / bound, 2) if bound else None,
        "ratio_target": RATIO_TARGET,
        "scheduler_restarts": scheduler_restarts,
    }


def _wait_for_runs(
    airflow: Any, count: int, timeout: float, stall_seconds: float = 90, max_restarts: int = 2
) -> tuple[list[dict[str, Any]], int]:
    """
    Wait for ``count`` finished runs; return them and the number of scheduler restarts it took.

    On SQLite the scheduler can hit a SQLAlchemy ``StaleDataError`` on ``dag_run`` ("expected to update 1 row(s);
    0 were matched") and then loop on ``PendingRollbackError`` while its process stays up (apache/airflow#27300,
    #63926): every run stays queued. A process supervisor would restart it; so does this harness, when no run
    changes state for ``stall_seconds``, at most ``max_restarts`` times. Restarts are reported, and the wall time
    includes the stall.
    """
    deadline = time.monotonic() + timeout
    last_states: list[str] = []
    last_change = time.monotonic()
    restarts = 0
    while True:
        runs = airflow.dag_runs(DAG_ID)
        states = sorted(run["state"] for run in runs)
        if sum(1 for state in states if state in ("success", "failed")) >= count:
            return list(runs), restarts
        if states != last_states:
            last_states, last_change = states, time.monotonic()
        elif time.monotonic() - last_change > stall_seconds:
            tail = airflow.log_tail("scheduler", 2000)
            if restarts >= max_restarts:
                raise RuntimeError(
                    f"no backfill run changed state for {stall_seconds:.0f} s (states {states.count('queued')} "
                    f"queued) after {restarts} scheduler restarts; its log ends:\n{tail}"
                )
            restarts += 1
            print(
                f"  backfill bench: no run moved for {stall_seconds:.0f} s; restarting the scheduler "
                f"({restarts}/{max_restarts}); its log ends:\n{tail[-600:]}",
                flush=True,
            )
            airflow.restart("scheduler")
            last_change = time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill not finished after {timeout:.0f} s")
        time.sleep(2)


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--windows", type=int, default=168)
    parser.add_argument("--events-per-hour", type=int, default=300)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    print(json.dumps(run(args.windows, args.events_per_hour, database=args.database), indent=2))


if __name__ == "__main__":
    main()
