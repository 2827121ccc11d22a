"""The oldest supported Airflow (3.1.x, pinned in requirements/compat-airflow-3.1.lock): DAG parsing and `dags test`.

A separate virtual environment is built with uv from that lock, the provider installed into it, and the shipped
DAG parsed and run for one window against the simulator and syslog-ng. Airflow 3.1 has no task state store, so
this also exercises the "no checkpoint, re-send the window" path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox.airflow_stack import REPO_ROOT
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng

pytestmark = pytest.mark.airflow_e2e

LOCK = REPO_ROOT / "requirements" / "compat-airflow-3.1.lock"
API_KEY = "compat-key-NOT-IN-LOGS"


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    pytest.fail("uv is needed to build the Airflow 3.1 environment: `python3 -m pip install uv` (make does this)")


@pytest.fixture(scope="module")
def airflow31(tmp_path_factory) -> Path:
    """A virtual environment with Airflow 3.1.x and this provider; returns its bin folder."""
    venv = tmp_path_factory.mktemp("airflow31") / "venv"
    uv = _uv()
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([*uv, "pip", "sync", "-q", "--python", python, str(LOCK)], check=True, timeout=900)
    subprocess.run([*uv, "pip", "install", "-q", "--python", python, "--no-deps", str(REPO_ROOT)], check=True)
    return venv / "bin"


def _env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "PYTHONPATH"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    env.update(extra)
    return env


class TestAirflow31Compatibility:
    def test_version_and_dag_parsing(self, airflow31, tmp_path):
        script = (
            "import airflow; from airflow.models.dagbag import DagBag; "
            "bag = DagBag(dag_folder=__import__('os').environ['AIRFLOW__CORE__DAGS_FOLDER'], include_examples=False); "
            "print('RESULT', airflow.__version__, sorted(bag.dags), len(bag.import_errors))"
        )
        result = subprocess.run(
            [str(airflow31 / "python"), "-c", script],
            env=_env(tmp_path, {}),
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
        assert line.startswith("RESULT 3.1."), line
        assert "['atlassian_audit_to_qradar'] 0" in line, result.stdout[-3000:] + result.stderr[-3000:]

    def test_dags_test_delivers_one_window(self, airflow31, tmp_path):
        require_syslog_ng()
        hour = (datetime.now(timezone.utc) - timedelta(hours=20)).replace(minute=0, second=0, microsecond=0)
        config = SimulatorConfig(
            org_id="org-31",
            api_key=API_KEY,
            start=hour - timedelta(hours=1),
            end=hour + timedelta(hours=2),
            events_per_hour=300,
            seed=31,
        )
        with run_in_thread(config) as sim, SyslogNg(tmp_path, "tcp") as receiver:
            extra = {
                ATLASSIAN_CONN_VAR: atlassian_connection(sim.base_url, "org-31", API_KEY),
                QRADAR_CONN_VAR: qradar_connection(receiver.port),
                "ATLASSIAN_QRADAR_START_DATE": (hour - timedelta(days=1)).isoformat(),
            }
            env = _env(tmp_path / "home", extra)
            airflow = str(airflow31 / "airflow")
            subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
            result = subprocess.run(
                [airflow, "dags", "test", "atlassian_audit_to_qradar", (hour + timedelta(hours=1)).isoformat()],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-4000:]
            truth = sim.ground_truth(hour, hour + timedelta(hours=1))
            lines = receiver.wait_for_lines(len(truth))
        got = Counter(parse_leef(line[line.index("LEEF:") :])[1]["eventId"] for line in lines)
        assert set(got) == set(truth) and max(got.values()) == 1
        assert "no task state store" in output  # 3.1: the documented re-send-the-window fallback is announced
        assert API_KEY not in output
