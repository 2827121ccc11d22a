"""The SIGKILL scenario: the real scheduler backfills one busy window and the task process is killed mid-window."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.faults.environment import DAG_ID, EVENTS_PER_HOUR, ORG, PAGE_SIZE, TASK_ID
from sandbox.faults.rows import Row, judge, key_bytes, tally
from sandbox.faults.scenarios import SIGKILL_SCENARIO, Scenario
from sandbox.receivers import SyslogNg


@dataclass
class AirflowArtifacts:
    """What a real Airflow run left that could carry a secret: task logs, XCom, rendered fields, service logs."""

    task_logs: dict[str, str] = field(default_factory=dict)
    service_logs: dict[str, str] = field(default_factory=dict)
    xcom: Any = None
    rendered_fields: Any = None
    task_instance: dict[str, Any] = field(default_factory=dict)


_TASK_RUNNER_TITLE = re.compile(r"airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def task_runner_processes(scheduler_pid: int) -> list[Any]:
    """The task processes under a scheduler: Airflow 3 titles them ``airflow worker -- <ti id>``.

    LocalExecutor workers fork a supervisor per task, which forks the task runner; only the runner carries that
    title, so killing it is "the task process died", and the supervisor reports the death to the scheduler.
    """
    import psutil

    try:
        children = psutil.Process(scheduler_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            title = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if _TASK_RUNNER_TITLE.match(
            title.strip()
        ):  # not "airflow worker -- LocalExecutor: ..." (the executor's workers)
            found.append(child)
    return found


def run_sigkill_scenario(workdir: Path, api_key: str, *, timeout: float = 1200) -> tuple[Row, AirflowArtifacts]:
    """Backfill one busy window on the real scheduler, SIGKILL the task process mid-window, let Airflow retry.

    :param api_key: the Atlassian key the connection carries (the secrets test makes it recognizable).
    """
    from sandbox.airflow_stack import AirflowHome, airflow_services

    row = Row(SIGKILL_SCENARIO, "Worker", "tcp", "success", duplicate_bound=PAGE_SIZE)
    artifacts = AirflowArtifacts()
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    busy = now_hour - timedelta(hours=30)
    config = SimulatorConfig(
        org_id=ORG,
        api_key=api_key,
        start=busy - timedelta(minutes=30),
        end=busy + timedelta(minutes=90),
        events_per_hour=EVENTS_PER_HOUR,
        seed=12,
        hostile_ratio=0.02,
        stream_requests_per_minute=0,
    )
    started = time.monotonic()
    with run_in_thread(config) as sim, SyslogNg(workdir, "tcp") as syslog:
        env = {
            ATLASSIAN_CONN_VAR: atlassian_connection(sim.base_url, ORG, api_key, page_size=PAGE_SIZE),
            QRADAR_CONN_VAR: qradar_connection(syslog.port, batch_size=PAGE_SIZE),
            # No catch-up work: the only run is the backfilled busy hour.
            "ATLASSIAN_QRADAR_START_DATE": now_hour.isoformat(),
        }
        home = AirflowHome(workdir / "airflow-home", extra_env=env)
        home.migrate()
        truth = set(sim.ground_truth(busy, busy + timedelta(hours=1)))
        with airflow_services(home) as airflow:
            airflow.wait_for_dag(DAG_ID, timeout=300)
            airflow.create_backfill(
                DAG_ID, busy.isoformat(), busy.isoformat(), max_active_runs=1, reprocess_behavior="none"
            )
            killed = _kill_task_mid_window(syslog, airflow.processes["scheduler"].pid, timeout=600)
            runs = airflow.wait_for_runs(DAG_ID, 1, timeout=timeout)
            run = runs[0]
            ti_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/{TASK_ID}"
            artifacts.task_instance = dict(airflow.api("GET", ti_path))
            artifacts.rendered_fields = artifacts.task_instance.get("rendered_fields")
            with contextlib.suppress(RuntimeError):
                artifacts.xcom = airflow.api("GET", f"{ti_path}/xcomEntries/return_value")
            lines = syslog.wait_for_lines(len(truth), timeout=120, settle=1.0)
        for path in sorted((home.path / "logs").rglob("*")):
            if path.is_file():
                artifacts.task_logs[str(path.relative_to(home.path))] = path.read_text(errors="replace")
        for path in sorted((home.path / "service-logs").glob("*.log")):
            artifacts.service_logs[path.name] = path.read_text(errors="replace")
    row.seconds = time.monotonic() - started
    tries = int(artifacts.task_instance.get("try_number") or 0)
    row.attempts = tries
    state = run["state"]
    row.outcome = f"{state} after {tries} attempts" if tries > 1 else state
    if state == "success" and tries == 1:
        row.outcome = "success (no retry happened)"
    got = tally(lines, truth)
    row.missing, row.duplicates = got.missing, got.duplicates
    row.malformed, row.unknown, row.forged_keys = got.malformed, got.unknown, got.forged_keys
    row.key_bytes = key_bytes(
        api_key,
        [*artifacts.task_logs.values(), *artifacts.service_logs.values(), json.dumps(artifacts.xcom), *lines],
    )
    xcom = artifacts.xcom.get("value") if isinstance(artifacts.xcom, dict) else None
    summary = json.loads(xcom) if isinstance(xcom, str) else xcom
    row.summary = summary if isinstance(summary, dict) else None
    row.message = (
        f"killed the task process after {killed['lines']} events had arrived" if killed else "task process not found"
    )
    if not killed:
        row.problems.append("the task process was not found to kill")
    if state != "success":
        row.problems.append(f"the run ended {state}")
    elif tries < 2:
        row.problems.append("the kill did not fail the first try")
    if row.summary is not None and not row.summary.get("resumed_after"):
        row.problems.append(f"the retry did not resume from a checkpoint: {row.summary}")
    judge(Scenario(SIGKILL_SCENARIO, "Worker"), row, got, len(truth))
    # judge adds the success check in its own words; keep the first explanation only.
    row.problems = list(dict.fromkeys(row.problems))
    return row, artifacts


def _kill_task_mid_window(syslog: SyslogNg, scheduler_pid: int, timeout: float) -> dict[str, int]:
    """SIGKILL the task process once three pages reached the receiver, in the pause before the next page.

    The DAG paces its requests (its share of the API budget: one every few seconds), so two seconds after a page
    arrived the task has written that page's checkpoint and waits for the next request. A kill in the instant
    between handing a page over and writing its checkpoint would re-send two pages (see the notes in docs/delivery.md).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and syslog.line_count() < 3 * PAGE_SIZE:
        time.sleep(0.1)
    time.sleep(2)
    while time.monotonic() < deadline:
        for process in task_runner_processes(scheduler_pid):
            lines = syslog.line_count()
            process.send_signal(signal.SIGKILL)
            return {"pid": process.pid, "lines": lines}
        time.sleep(0.1)
    return {}
