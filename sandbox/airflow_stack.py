"""Run a real Airflow 3 (SQLite, LocalExecutor) in a throw-away AIRFLOW_HOME, for tests and the demo.

Nothing here touches the user's ``~/airflow``: every command gets its own AIRFLOW_HOME, ports are chosen free,
and every process started is stopped (whole process group) on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))


def free_port() -> int:
    """Return a TCP port that is free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def session_members(session_id: int) -> list[int]:
    """PIDs of the live processes in a session (Linux /proc): all a service started, whatever their group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session_id:
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return members


@dataclass
class AirflowHome:
    """A private AIRFLOW_HOME with its environment; ``cli()`` runs ``airflow`` commands inside it."""

    path: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    dags_folder: Path = REPO_ROOT / "dags"
    api_port: int = field(default_factory=free_port)
    # None: every request is an admin (tests). A password: user "admin" must log in (the demo's UI mode).
    admin_password: str | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # Few task processes for a 2-core test machine; fewer than the DAG's API slots (10) leaves slots
                # idle, so the benchmarks set Airflow's default (32), as a deployment should.
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__HOST": "127.0.0.1",
                # Workers reach the API server here; without it every task fails with "connection refused"
                # whenever the API server is not on 8080.
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
            }
        )
        if self.admin_password is not None:
            passwords = self.path / "simple_auth_manager_passwords.json"
            passwords.parent.mkdir(parents=True, exist_ok=True)
            passwords.write_text(json.dumps({"admin": self.admin_password}))
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "False"
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
            env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow ARGS`` in this home and return the completed process (text output)."""
        result = subprocess.run(
            [AIRFLOW_BIN, *args],
            env=self.env,
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
                f"\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    def migrate(self) -> None:
        """Create the SQLite metadata database."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=300)


#: Read by :func:`worker_hostname`: the name of one of several workers that share a machine.
WORKER_NAME_ENV = "AIRFLOW_STACK_WORKER_NAME"


def worker_hostname() -> str:
    """``[core] hostname_callable`` for several workers on one machine: ``<worker name>@<fqdn>``.

    Task instances record the hostname their task process reports, which is the machine's name for every
    Celery worker on it; with this callable and ``AIRFLOW_STACK_WORKER_NAME`` set per worker, they record
    which worker ran them. Without the variable it is the plain FQDN, as Airflow's default.
    """
    fqdn = socket.getfqdn()
    worker = os.environ.get(WORKER_NAME_ENV, "")
    return f"{worker}@{fqdn}" if worker else fqdn


@dataclass(frozen=True)
class Component:
    """One ``airflow`` subprocess: its name (process key and log file name), arguments and extra environment.

    :param name: e.g. ``"worker-w1"``; logs go to ``<home>/service-logs/<name>.log``.
    :param args: the ``airflow`` arguments, e.g. ``("celery", "worker", "--celery-hostname", "w1@%h")``.
    :param env: variables added to the home's environment for this process only.
    """

    name: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class AirflowServices:
    """Scheduler, API server, DAG processor, triggerer (and any other ``airflow`` component, such as Celery
    workers) of one AirflowHome, as subprocesses, each in a session of its own."""

    home: AirflowHome
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)
    token: str | None = None
    #: how many times :meth:`wait_for_runs` restarted a stalled scheduler
    scheduler_restarts: int = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.home.api_port}"

    def start(
        self, components: Sequence[str | Component] = ("api-server", "scheduler", "dag-processor", "triggerer")
    ) -> None:
        """Start each component (a name such as ``"scheduler"``, or a :class:`Component`) and wait for the API."""
        for item in components:
            self._spawn(item if isinstance(item, Component) else Component(item, (item,)))
        self.wait_until_ready()

    def _spawn(self, component: Component) -> None:
        logs = self.home.path / "service-logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{component.name}.log", "ab") as out:  # the child keeps its own copy of the fd
            self.processes[component.name] = subprocess.Popen(
                [AIRFLOW_BIN, *component.args],
                env={**self.home.env, **component.env},
                cwd=self.home.path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.components[component.name] = component

    def restart(self, name: str) -> None:
        """Stop one component (its whole session) and start it again, as a process supervisor would."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        _reap(process, time.monotonic() + 30)
        self._spawn(self.components[name])

    def wait_until_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited early:\n{self.log_tail(name)}")
            try:
                if requests.get(f"{self.api_url}/api/v2/version", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the Airflow API server did not answer within {timeout} s:\n{self.log_tail('api-server')}")

    def log_tail(self, component: str, chars: int = 4000) -> str:
        path = self.home.path / "service-logs" / f"{component}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def _headers(self) -> dict[str, str]:
        if self.home.admin_password is None:
            return {}
        if self.token is None:
            response = requests.post(
                f"{self.api_url}/auth/token",
                json={"username": "admin", "password": self.home.admin_password},
                timeout=30,
            )
            response.raise_for_status()
            self.token = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API, logging in first when the home has an admin password."""
        headers = self._headers()
        response = requests.request(method, f"{self.api_url}{path}", headers=headers, timeout=30, **kwargs)
        if not response.ok:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, **options: Any) -> dict[str, Any]:
        """``POST /api/v2/backfills`` — what the UI's Trigger -> Backfill does.

        On SQLite the API server answers 503 "Database is locked" while the scheduler holds the database; that
        is transient, so the request is repeated for up to a minute.
        """
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, **options}
        deadline = time.monotonic() + 60
        while True:
            try:
                return dict(self.api("POST", "/api/v2/backfills", json=body))
            except RuntimeError as err:
                if "-> 503" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def wait_for_backfill(self, backfill_id: int, timeout: float = 600) -> dict[str, Any]:
        """Wait until the scheduler marks a backfill completed (a DAG has one active backfill at a time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfill = dict(self.api("GET", f"/api/v2/backfills/{backfill_id}"))
            if backfill.get("completed_at"):
                return backfill
            time.sleep(1)
        raise TimeoutError(f"backfill {backfill_id} not completed after {timeout} s")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"{self.api_url}/api/v2/dags/{dag_id}", headers=self._headers(), timeout=10)
            except requests.RequestException:  # a busy API server (SQLite locked by the scheduler): ask again
                response = None
            if response is not None and response.ok:
                return
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout} s:\n{self.log_tail('dag-processor')}")

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """All runs of a DAG. The API returns at most ``[api] maximum_page_limit`` (100) a page: walk the pages."""
        runs: list[dict[str, Any]] = []
        while True:
            body = self.api(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns",
                params={"limit": 100, "offset": len(runs), "order_by": "id"},
            )
            page = list(body["dag_runs"])
            runs.extend(page)
            if not page or len(runs) >= int(body.get("total_entries", len(runs))):
                return runs

    def wait_for_runs(
        self, dag_id: str, count: int, timeout: float = 600, restart_stalled_scheduler_after: float | None = None
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` runs of the DAG reached a final state; return all runs.

        :param restart_stalled_scheduler_after: when set, a scheduler under which no run changes state for this
            many seconds is restarted (twice at most), as a process supervisor would: on SQLite, Airflow 3.3.2's
            scheduler can wedge on a backfill with its process still up (``FOREIGN KEY constraint failed`` /
            ``ObjectDeletedError``, apache/airflow#27300). Restarts are counted in :attr:`scheduler_restarts`.
        """
        deadline = time.monotonic() + timeout
        runs: list[dict[str, Any]] = []
        last_states: list[str] = []
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            runs = self.dag_runs(dag_id)
            done = [r for r in runs if r["state"] in ("success", "failed")]
            if len(done) >= count:
                return runs
            states = sorted(r["state"] for r in runs)
            if states != last_states:
                last_states, last_change = states, time.monotonic()
            elif (
                restart_stalled_scheduler_after is not None
                and time.monotonic() - last_change > restart_stalled_scheduler_after
                and self.scheduler_restarts < 2
            ):
                self.scheduler_restarts += 1
                print(
                    f"no run of {dag_id} moved for {restart_stalled_scheduler_after:.0f} s: restarting the scheduler "
                    f"({self.scheduler_restarts}/2); its log ends:\n{self.log_tail('scheduler', 1500)}",
                    flush=True,
                )
                self.restart("scheduler")
                last_change = time.monotonic()
            time.sleep(2)
        states = sorted((r["dag_run_id"], r["state"]) for r in runs)
        raise TimeoutError(f"{dag_id}: runs not finished after {timeout} s: {states}\n{self.log_tail('scheduler')}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            _reap(process, deadline)
        self.processes.clear()


def _reap(process: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait (until ``deadline``) for a component asked to stop, then kill whatever of its session is left."""
    try:
        process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    # Also when the leader has exited: what it left behind goes too, its group (Celery pool processes)
    # and the rest of its session (task processes, which Airflow puts in groups of their own).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in session_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def airflow_services(home: AirflowHome, **kwargs: Any) -> Iterator[AirflowServices]:
    """Start the Airflow components of ``home`` and stop them all on exit."""
    services = AirflowServices(home)
    try:
        services.start(**kwargs)
        yield services
    finally:
        services.stop()
