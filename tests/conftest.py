"""Test-wide set-up: a throw-away AIRFLOW_HOME so no test touches the user's ~/airflow."""

from __future__ import annotations

import os
import tempfile

# Must run before anything imports airflow: Airflow reads AIRFLOW_HOME at import time.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="aq-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest  # noqa: E402  (after the environment set-up above, on purpose)

#: Atlassian does not document which clock from/to filter on; every exactly-once test runs under each.
FILTER_CLOCKS = ("time", "processed")


@pytest.fixture(params=FILTER_CLOCKS, scope="module")
def filter_clock(request: pytest.FixtureRequest) -> str:
    """The clock the simulated API filters ``from``/``to`` on (``time`` or ``processed``)."""
    return str(request.param)
