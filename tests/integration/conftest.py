"""Fixtures for tests that run real Airflow commands in a private, migrated AIRFLOW_HOME."""

from __future__ import annotations

import pytest

from sandbox.airflow_stack import AirflowHome


@pytest.fixture(scope="session")
def migrated_airflow_home(tmp_path_factory) -> AirflowHome:
    """An AIRFLOW_HOME with an initialised SQLite database, shared by the CLI tests of a session."""
    home = AirflowHome(tmp_path_factory.mktemp("airflow-home"))
    home.migrate()
    return home
