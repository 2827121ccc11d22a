"""The provider as Airflow sees it: `airflow providers list` and `airflow connections test`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sandbox.airflow_stack import AirflowHome
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, atlassian_connection

API_KEY = "cli-test-key-SHOULD-NOT-APPEAR"


def with_connection(home: AirflowHome, base_url: str, password: str) -> AirflowHome:
    return replace(home, extra_env={ATLASSIAN_CONN_VAR: atlassian_connection(base_url, "org-cli", password)})


class TestAirflowCli:
    def test_providers_list_shows_the_provider(self, migrated_airflow_home):
        out = migrated_airflow_home.cli("providers", "list").stdout
        assert "airflow-provider-atlassian-qradar" in out

    def test_connection_types_are_registered(self, migrated_airflow_home):
        out = migrated_airflow_home.cli("providers", "hooks").stdout
        assert "atlassian_admin" in out and "qradar" in out

    def test_connections_test_against_the_simulator(self, migrated_airflow_home):
        now = datetime.now(timezone.utc)
        config = SimulatorConfig(
            org_id="org-cli", api_key=API_KEY, start=now - timedelta(hours=1), end=now, events_per_hour=5
        )
        with run_in_thread(config) as sim:
            good = with_connection(migrated_airflow_home, sim.base_url, API_KEY)
            result = good.cli("connections", "test", "atlassian_admin_default")
            assert "Connection success" in result.stdout, result.stdout + result.stderr

            bad = with_connection(migrated_airflow_home, sim.base_url, "wrong-key")
            result = bad.cli("connections", "test", "atlassian_admin_default", check=False)
        output = result.stdout + result.stderr
        assert "Connection success" not in output
        assert "API key is wrong, expired or revoked" in output
        assert "wrong-key" not in output
