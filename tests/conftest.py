"""Test-wide set-up: a throw-away AIRFLOW_HOME so no test touches the user's ~/airflow."""

from __future__ import annotations

import os
import tempfile

# Must run before anything imports airflow: Airflow reads AIRFLOW_HOME at import time.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="aq-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
