"""`make demo`: the whole pipeline on one machine, with nothing but Python.

Starts the Atlassian API simulator (a few days of realistic audit events), a local syslog receiver (syslog-ng if
installed, else a built-in TCP receiver), and a real Airflow 3 (scheduler, API server, DAG processor, triggerer;
SQLite; in ``.demo/airflow-home``, never ``~/airflow``). Catchup then delivers the last N hourly windows. The demo
prints a per-window table and three received LEEF lines, and exits 0 only if every window succeeded and the
receiver got exactly the simulator's ground truth (no event missing, none twice).

``--ui`` keeps Airflow running afterwards and prints the UI address and login, so you can open the DAG and use
Trigger -> Backfill. Ctrl-C stops everything the demo started.

With both ``AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT`` and ``AIRFLOW_CONN_QRADAR_DEFAULT`` set, the demo uses them
instead of the simulator and the local receiver (real services; no ground-truth comparison is possible then).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sandbox.airflow_stack import REPO_ROOT, AirflowHome, AirflowServices, airflow_services, free_port
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg
from sandbox.receivers.line_receiver import LineReceiver

DAG_ID = "atlassian_audit_to_qradar"
TASK_ID = "deliver_audit_events"
DEMO_DIR = REPO_ROOT / ".demo"


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _start_receiver(stack: ExitStack, output: Path) -> tuple[int, Path, str]:
    """Start syslog-ng when installed, else the built-in receiver; return (port, output file, name)."""
    if shutil.which("syslog-ng"):
        receiver = stack.enter_context(SyslogNg(output.parent, transport="tcp"))
        return receiver.port, receiver.output, "syslog-ng"
    line_receiver = stack.enter_context(LineReceiver(output))
    return line_receiver.port, output, "built-in TCP receiver"


def _xcom_summary(services: AirflowServices, run_id: str) -> dict[str, Any]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries/return_value"
    try:
        value = services.api("GET", path).get("value")
    except RuntimeError:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _wait_with_progress(services: AirflowServices, total: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    shown = -1
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = services.dag_runs(DAG_ID)
        done = sum(1 for r in runs if r["state"] in ("success", "failed"))
        if done != shown:
            print(f"  windows done: {done}/{total}", flush=True)
            shown = done
        if done >= total:
            return runs
        time.sleep(2)
    raise TimeoutError(f"only {shown}/{total} windows finished in {timeout:.0f} s; see {services.home.path}")


def run(windows: int, ui: bool, port: int, workdir: Path = DEMO_DIR, filter_clock: str = "time") -> int:
    """Run the demo; return the process exit code."""
    real = all(os.environ.get(f"AIRFLOW_CONN_{name}") for name in ("ATLASSIAN_ADMIN_DEFAULT", "QRADAR_DEFAULT"))
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    received = workdir / "received-leef.log"
    now = datetime.now(timezone.utc)
    last_end = now.replace(minute=0, second=0, microsecond=0)
    first_start = last_end - timedelta(hours=windows)
    env: dict[str, str] = {
        "ATLASSIAN_QRADAR_START_DATE": first_start.isoformat(),
        "ATLASSIAN_QRADAR_SETTLE_MINUTES": "1",
    }
    with ExitStack() as stack:
        sim = None
        if real:
            print("Using the real connections from AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT / AIRFLOW_CONN_QRADAR_DEFAULT")
        else:
            api_key = secrets.token_urlsafe(24)
            config = SimulatorConfig(
                org_id="demo-org",
                api_key=api_key,
                start=last_end - timedelta(days=3),
                end=last_end,
                events_per_hour=120,
                seed=7,
                hostile_ratio=0.02,
                processing_lag_max_seconds=30,
                filter_clock=filter_clock,
            )
            sim = stack.enter_context(run_in_thread(config))
            receiver_port, received, receiver_name = _start_receiver(stack, received)
            print(
                f"Atlassian API simulator: {sim.base_url} ({sim.event_count} events over 3 days; from/to filter on "
                f"{'event time' if filter_clock == 'time' else 'processedAt'})"
            )
            print(f"QRadar stand-in: {receiver_name} on 127.0.0.1:{receiver_port} -> {received}")
            env[ATLASSIAN_CONN_VAR] = atlassian_connection(sim.base_url, "demo-org", api_key)
            env[QRADAR_CONN_VAR] = qradar_connection(receiver_port, log_source_identifier="Atlassian-AuditLogs")
        password = secrets.token_urlsafe(12) if ui else None
        home = AirflowHome(workdir / "airflow-home", extra_env=env, api_port=port, admin_password=password)
        print(f"Airflow home: {home.path} (your ~/airflow is not touched); initialising the database ...")
        home.migrate()
        services = stack.enter_context(airflow_services(home))
        print(f"Airflow is up on {services.api_url}; catchup of {windows} hourly windows from {first_start:%H:%M} UTC")
        services.wait_for_dag(DAG_ID)
        runs = _wait_with_progress(services, windows, timeout=600)
        ok = _report(services, runs, sim, received, first_start, last_end)
        if ui:
            print(
                f"\nAirflow UI: {services.api_url}  login: admin / {password}\n"
                f"Open the DAG {DAG_ID!r}, then Trigger -> Backfill to (re)load any range. Ctrl-C stops everything.",
                flush=True,
            )
            signal.pause()  # until Ctrl-C (or SIGTERM): KeyboardInterrupt unwinds and stops everything
        return 0 if ok else 1


def _report(
    services: AirflowServices,
    runs: list[dict[str, Any]],
    sim: Any,
    received: Path,
    first_start: datetime,
    last_end: datetime,
) -> bool:
    runs = sorted(runs, key=lambda r: r["data_interval_start"])
    print(f"\n{'window (UTC)':<35} {'state':<8} {'fetched':>8} {'delivered':>10} {'seconds':>8}  filter clock")
    all_success = True
    for run in runs:
        summary = _xcom_summary(services, run["dag_run_id"])
        start = run["data_interval_start"][:16].replace("T", " ")
        end = run["data_interval_end"][11:16]
        all_success &= run["state"] == "success"
        print(
            f"{start + ' - ' + end:<35} {run['state']:<8} {summary.get('fetched', '-'):>8} "
            f"{summary.get('sent', '-'):>10} {summary.get('seconds', '-'):>8}  {summary.get('filter_clock', '-')}"
        )
    if sim is None:
        print("\nreal services: no ground truth to compare with; check QRadar's Log Activity for the events")
        return all_success
    lines = received.read_text(encoding="utf-8", errors="replace").splitlines() if received.exists() else []
    got = Counter(parse_leef(line[line.index("LEEF:") :])[1].get("eventId", "?") for line in lines if "LEEF:" in line)
    truth = sim.ground_truth(first_start, last_end)
    missing = set(truth) - set(got)
    extra = set(got) - set(truth)
    duplicated = sum(n - 1 for n in got.values() if n > 1)
    print(f"\nreceived LEEF file: {received} ({len(lines)} lines); three samples:")
    for line in lines[:3]:
        print(f"  {line[:300]}{' ...' if len(line) > 300 else ''}")
    print(
        f"\nground truth: {len(truth)} events; received {sum(got.values())}; missing {len(missing)}; "
        f"duplicated {duplicated}; unexpected {len(extra)}"
    )
    ok = all_success and not missing and not extra and duplicated == 0
    print("DEMO PASSED" if ok else "DEMO FAILED")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=int(os.environ.get("DEMO_WINDOWS", "6")))
    parser.add_argument("--ui", action="store_true", help="keep Airflow running and print the UI login")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8080")))
    parser.add_argument("--workdir", type=Path, default=DEMO_DIR, help="scratch folder, wiped first (default .demo)")
    parser.add_argument(
        "--filter-clock",
        choices=("time", "processed"),
        default=os.environ.get("DEMO_FILTER_CLOCK", "time"),
        help="which clock the simulated API's from/to filter on (Atlassian does not document it)",
    )
    args = parser.parse_args()

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds the ExitStack: every process the demo started is stopped

    signal.signal(signal.SIGTERM, stop)
    # A shell starting us in the background (`make demo-ui &`, nohup) sets SIGINT to "ignore", which Python then
    # keeps; Ctrl-C / kill -INT must still stop everything.
    signal.signal(signal.SIGINT, stop)
    try:
        sys.exit(run(args.windows, args.ui, _port(args.port), args.workdir.resolve(), args.filter_clock))
    except KeyboardInterrupt:
        print("stopped; everything the demo started is gone", flush=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
