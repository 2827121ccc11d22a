"""The compose file's topology, shown to work without containers: the CeleryExecutor with PostgreSQL and Redis.

PostgreSQL and Redis come from the Debian packages and run on loopback in temporary directories; the scheduler,
API server, DAG processor, triggerer and two Celery workers are separate ``airflow`` processes. A 12-window
backfill created through ``POST /api/v2/backfills`` must run on both workers and deliver the simulator's ground
truth to a real syslog-ng exactly once.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.airflow_stack import (
    WORKER_NAME_ENV,
    AirflowHome,
    AirflowServices,
    Component,
    airflow_services,
    free_port,
    session_members,
)
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.receivers import SyslogNg, require_syslog_ng
from sandbox.services import (
    Postgres,
    Redis,
    ServiceBinaryMissing,
    postgres_bin_dir,
    processes_under,
    redis_server_binary,
)
from tests.integration.test_dag_e2e import API_KEY, DAG_ID, NOW_HOUR, ORG, connections, received_ids

pytestmark = [pytest.mark.celery_e2e, pytest.mark.airflow_e2e]

WORKERS = ("w1", "w2")
WINDOWS = 12
EVENTS_PER_HOUR = 150
#: What a Celery worker logs once it consumes its queue: "<name>@<machine hostname> ready." (Celery's %h).
READY_LINE = r"\b{name}@\S+ ready\."


def require_celery_services() -> None:
    """Skip when PostgreSQL or Redis is not installed; fail instead when ``REQUIRE_CELERY_SERVICES=1`` (CI)."""
    try:
        postgres_bin_dir()
        redis_server_binary()
    except ServiceBinaryMissing as missing:
        if os.environ.get("REQUIRE_CELERY_SERVICES") == "1":
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture
def syslog_ng(tmp_path: Path) -> Iterator[SyslogNg]:
    require_syslog_ng()
    with SyslogNg(tmp_path, "tcp") as receiver:
        yield receiver


def celery_worker(name: str) -> Component:
    """One Celery worker of two on this machine, told apart in task instances by ``worker_hostname``."""
    return Component(
        f"worker-{name}",
        ("celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "2", "--skip-serve-logs"),
        {
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sandbox.airflow_stack.worker_hostname",
            WORKER_NAME_ENV: name,
        },
    )


def wait_for_workers(airflow: AirflowServices, timeout: float = 120) -> None:
    """Wait until every Celery worker consumes its queue: a backfill queued earlier could all go to one."""
    deadline = time.monotonic() + timeout
    pending = set(WORKERS)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if airflow.processes[f"worker-{name}"].poll() is not None:
                raise RuntimeError(f"Celery worker {name} exited:\n{airflow.log_tail(f'worker-{name}')}")
            if re.search(READY_LINE.format(name=name), airflow.log_tail(f"worker-{name}", chars=1_000_000)):
                pending.discard(name)
        time.sleep(0.5)
    if pending:
        tails = "\n".join(airflow.log_tail(f"worker-{name}") for name in sorted(pending))
        raise TimeoutError(f"Celery workers {sorted(pending)} not ready after {timeout} s:\n{tails}")


class TestCeleryExecutor:
    def test_backfill_runs_on_both_workers_and_delivers_the_ground_truth_once(
        self, tmp_path: Path, syslog_ng: SyslogNg
    ) -> None:
        require_celery_services()
        backfill_first = NOW_HOUR - timedelta(hours=36)
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=backfill_first,
            end=backfill_first + timedelta(hours=WINDOWS),
            events_per_hour=EVENTS_PER_HOUR,
            seed=12,
            hostile_ratio=0.02,
        )
        sessions: list[int] = []
        server_directories: list[Path] = []
        with Postgres() as postgres, Redis() as redis, run_in_thread(config) as sim:
            server_directories += [server.directory for server in (postgres, redis) if server.directory]
            env = connections(sim.base_url, syslog_ng.port)
            env.update(
                {
                    # No scheduled run, even if the test crosses an hour: every run comes from the backfill.
                    "ATLASSIAN_QRADAR_START_DATE": (NOW_HOUR + timedelta(days=1)).isoformat(),
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url("postgresql+psycopg2"),
                    "AIRFLOW__CELERY__BROKER_URL": redis.url(),
                    "AIRFLOW__CELERY__RESULT_BACKEND": postgres.url("db+postgresql+psycopg2"),
                    # Not the fixed default, which another Airflow on this machine may hold. (The workers serve
                    # no logs: both would want the same port; the API server reads the log files directly.)
                    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                }
            )
            home = AirflowHome(tmp_path / "airflow-home", extra_env=env)
            home.migrate()
            components = (
                "api-server",
                "scheduler",
                "dag-processor",
                "triggerer",
                *(celery_worker(name) for name in WORKERS),
            )
            with airflow_services(home, components=components) as airflow:
                sessions += [process.pid for process in airflow.processes.values()]
                wait_for_workers(airflow)
                airflow.wait_for_dag(DAG_ID)
                backfill = airflow.create_backfill(
                    DAG_ID,
                    backfill_first.isoformat(),
                    (backfill_first + timedelta(hours=WINDOWS - 1)).isoformat(),
                    max_active_runs=4,
                    reprocess_behavior="none",
                )
                runs = airflow.wait_for_runs(DAG_ID, WINDOWS, timeout=600)
                airflow.wait_for_backfill(backfill["id"], timeout=120)
                task_instances = airflow.api(
                    "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"limit": 1000}
                )["task_instances"]
                truth = sim.ground_truth(backfill_first, backfill_first + timedelta(hours=WINDOWS))
                syslog_ng.wait_for_lines(len(truth))
                time.sleep(2)  # anything still arriving would be a duplicate: give it a moment to show
                got = received_ids(syslog_ng.lines())

        assert len(runs) == WINDOWS
        assert {r["state"] for r in runs} == {"success"}, [(r["dag_run_id"], r["state"]) for r in runs]
        assert {r["run_type"] for r in runs} == {"backfill"}
        assert len(truth) == WINDOWS * EVENTS_PER_HOUR
        assert set(got) == set(truth), f"missing {len(set(truth) - set(got))}, unexpected {len(set(got) - set(truth))}"
        assert max(got.values()) == 1, "an event arrived twice"
        fqdn = socket.getfqdn()
        hosts = sorted(ti["hostname"] for ti in task_instances)
        assert len(hosts) == WINDOWS
        assert set(hosts) == {f"{name}@{fqdn}" for name in WORKERS}, f"task instances ran on {hosts}"
        leftovers = [session_members(session) for session in sessions]
        leftovers += [processes_under(directory) for directory in server_directories]
        assert not any(leftovers), f"processes left behind: {leftovers}"
        assert not any(directory.exists() for directory in server_directories)
