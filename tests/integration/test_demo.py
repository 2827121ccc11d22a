"""`make demo` as a user runs it: the finite mode must pass, and the UI mode must stop everything on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from sandbox.airflow_stack import REPO_ROOT, free_port

pytestmark = pytest.mark.airflow_e2e


def demo_command(tmp_path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sandbox.demo",
        "--workdir",
        str(tmp_path / "demo"),
        "--port",
        str(free_port()),
        *args,
    ]


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def processes_using(path: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            text = " ".join(process.info["cmdline"] or []) + " ".join((process.info["environ"] or {}).values())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if path in text and process.pid != os.getpid():
            found.append(process)
    return found


class TestDemo:
    def test_finite_mode_passes_against_ground_truth(self, tmp_path, filter_clock):
        result = subprocess.run(
            demo_command(tmp_path, "--windows", "2", "--filter-clock", filter_clock),
            cwd=REPO_ROOT,
            env=demo_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert "DEMO PASSED" in result.stdout
        assert "windows done: 2/2" in result.stdout
        assert "missing 0; duplicated 0; unexpected 0" in result.stdout
        # Each window's row names the clock its data showed: never the other clock (a quiet hour shows 'unknown').
        rows = [line for line in result.stdout.splitlines() if line.startswith("20") and " success " in line]
        assert len(rows) == 2 and all(row.split()[-1] in (filter_clock, "unknown") for row in rows), rows
        assert not processes_using(str(tmp_path / "demo"))

    def test_ui_mode_prints_a_working_login_and_ctrl_c_stops_everything(self, tmp_path):
        process = subprocess.Popen(
            demo_command(tmp_path, "--windows", "1", "--ui"),
            cwd=REPO_ROOT,
            env=demo_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = []
        try:
            deadline = time.monotonic() + 600
            assert process.stdout is not None
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                output.append(line)
                if line.startswith("Airflow UI:"):
                    break
            text = "".join(output)
            match = re.search(r"Airflow UI: (\S+)\s+login: admin / (\S+)", text)
            assert match, text[-4000:]
            url, password = match.groups()
            assert requests.get(url, timeout=10).status_code == 200
            token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=10)
            assert token.ok, token.text
            dags = requests.get(
                f"{url}/api/v2/dags", headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=10
            )
            assert "atlassian_audit_to_qradar" in dags.text
            assert processes_using(str(tmp_path / "demo")), "Airflow should be running while the UI is up"
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while processes_using(str(tmp_path / "demo")) and time.monotonic() < deadline:
            time.sleep(0.5)
        leftovers = processes_using(str(tmp_path / "demo"))
        assert not leftovers, [p.info["cmdline"] for p in leftovers]
        assert process.returncode == 130
