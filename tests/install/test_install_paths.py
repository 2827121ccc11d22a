"""The install paths a new user takes, each from scratch (marker ``install_e2e``; about two to four minutes).

- A fresh ``git clone`` of this repository's HEAD runs ``make demo`` with Debian's own ``/usr/bin/python3``,
  which refuses ``pip install`` (PEP 668, externally managed): so the Makefile must build its venv with the
  standard library and install everything inside it.
- A wheel built from the repository (``python -m build``) installs into a fresh virtual environment with
  ``apache-airflow==3.3.2`` (pinned by the lock), ``airflow providers list`` shows the provider, and the DAG file
  it writes (``python -m airflow_provider_atlassian_qradar.example_dag --write``) loads in that Airflow.

Both reuse uv's and pip's download caches, so only the first run on a machine downloads Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements" / "dev.lock"
DEBIAN_PYTHON = Path("/usr/bin/python3")

pytestmark = pytest.mark.install_e2e


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that points at this checkout's venv or an Airflow home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON", "UV_PROJECT", "PIP_REQUIRE"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env.update(extra)
    return env


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n--- stdout\n{result.stdout[-5000:]}"
        f"\n--- stderr\n{result.stderr[-5000:]}"
    )
    return result


def debian_python() -> Path:
    if not DEBIAN_PYTHON.exists():
        pytest.skip("no /usr/bin/python3 (this test is about Debian's/Ubuntu's own Python)")
    return DEBIAN_PYTHON


def test_make_demo_from_a_fresh_clone_with_debian_python(tmp_path):
    python = debian_python()
    refused = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "uv"], capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr + refused.stdout, (
        "this test proves nothing unless /usr/bin/python3 refuses pip install (PEP 668)"
    )
    clone = tmp_path / "clone"
    run(
        ["git", "clone", "-q", "--no-hardlinks", str(REPO_ROOT), str(clone)], cwd=tmp_path, env=clean_env(), timeout=120
    )
    result = run(["make", "demo", f"PYTHON={python}"], cwd=clone, env=clean_env(), timeout=1200)
    print(result.stdout[-3000:])
    config = (clone / ".venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in config  # the venv is Debian's Python, made by its own venv module
    assert (clone / ".venv" / "bin" / "uv").exists()  # uv lives inside the venv, not in the caller's Python
    version = run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import airflow; print(airflow.__version__)"],
        cwd=clone,
        env=clean_env(),
        timeout=120,
    )
    assert version.stdout.strip() == "3.3.2"
    unchanged = subprocess.run([str(python), "-c", "import uv"], capture_output=True, text=True, check=False)
    assert unchanged.returncode != 0  # nothing was installed into /usr/bin/python3


def test_built_wheel_installs_into_a_fresh_airflow_and_is_listed(tmp_path):
    dist = tmp_path / "dist"
    run(
        [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(dist), str(REPO_ROOT)],
        cwd=tmp_path,
        env=clean_env(),
        timeout=600,
    )
    wheels = sorted(dist.glob("airflow_provider_atlassian_qradar-*-py3-none-any.whl"))
    sdists = sorted(dist.glob("airflow_provider_atlassian_qradar-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "airflow_provider_atlassian_qradar/example_dag.py" in names
    assert not any(name.startswith(("tests/", "sandbox/", "dags/")) for name in names)

    uv = [sys.executable, "-m", "uv"]
    venv = tmp_path / "fresh-venv"
    run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], cwd=tmp_path, env=clean_env(), timeout=120)
    python = venv / "bin" / "python"
    # The user's command, with Airflow pinned; the lock only as constraints so the versions match CI's.
    run(
        [
            *uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            "-c",
            str(LOCK),
            "apache-airflow==3.3.2",
            str(wheels[0]),
        ],
        cwd=tmp_path,
        env=clean_env(),
        timeout=900,
    )
    home = tmp_path / "airflow-home"
    dags = home / "dags"
    env = clean_env(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(dags))
    listed = run([str(venv / "bin" / "airflow"), "providers", "list", "-o", "json"], cwd=tmp_path, env=env, timeout=300)
    providers = {entry["package_name"]: entry for entry in json.loads(listed.stdout[listed.stdout.index("[") :])}
    assert "airflow-provider-atlassian-qradar" in providers, sorted(providers)
    assert providers["airflow-provider-atlassian-qradar"]["version"] == "0.1.0"

    run(
        [str(python), "-m", "airflow_provider_atlassian_qradar.example_dag", "--write", f"{dags}/"],
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    loaded = run(
        [
            str(python),
            "-c",
            "from airflow.dag_processing.dagbag import DagBag; import os; "
            "bag = DagBag(dag_folder=os.environ['AIRFLOW__CORE__DAGS_FOLDER']); "
            "print(sorted(bag.dag_ids), bag.import_errors)",
        ],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert loaded.stdout.strip().splitlines()[-1] == "['atlassian_audit_to_qradar'] {}"
    assert shutil.which("airflow", path=str(venv / "bin"))
