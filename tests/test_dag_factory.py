"""The DAG factory's environment variables: validated with messages that name them; the query is never a template."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_atlassian_qradar import dag_factory
from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

TASK_ID = "deliver_audit_events"


def _task(monkeypatch, **env: str):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_audit_dag("factory_test").get_task(TASK_ID)


class TestEnvironmentSettings:
    @pytest.mark.parametrize(
        ("name", "value", "expected"),
        [
            ("ATLASSIAN_QRADAR_START_DATE", "yesterday", "is not an ISO 8601 date or date-time"),
            ("ATLASSIAN_QRADAR_START_DATE", "P1D", "is a duration or time"),
            ("ATLASSIAN_QRADAR_SETTLE_MINUTES", "fifteen", "is not a number of minutes >= 0"),
            ("ATLASSIAN_QRADAR_SETTLE_MINUTES", "-5", "is not a number of minutes >= 0"),
            ("ATLASSIAN_QRADAR_SETTLE_MINUTES", "nan", "is not a number of minutes >= 0"),
            ("ATLASSIAN_QRADAR_TIMEZONE", "Mars/Olympus", "is not an IANA time zone name"),
            ("ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES", "0", "is not a number of minutes >= 1"),
            ("ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES", "a day", "is not a number of minutes >= 0"),
            ("ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES", "-1", "is not a number of minutes >= 0"),
            ("ATLASSIAN_QRADAR_FAIL_WHEN_SILENT", "sometimes", "is not a boolean: use true or false"),
        ],
    )
    def test_a_bad_value_names_the_variable_and_the_expected_form(self, monkeypatch, name, value, expected):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError) as error:  # DagSettingsError: a DAG import error naming the variable
            build_audit_dag("factory_test")
        assert str(error.value).startswith(f"{name}={value!r}")
        assert expected in str(error.value)
        assert type(error.value).__name__ == "DagSettingsError"

    def test_good_values_are_used(self, monkeypatch):
        task = _task(
            monkeypatch,
            ATLASSIAN_QRADAR_START_DATE="2026-11-02",
            ATLASSIAN_QRADAR_SETTLE_MINUTES="7.5",
            ATLASSIAN_QRADAR_TIMEZONE="Europe/Berlin",
        )
        assert task.settle == timedelta(minutes=7.5)
        assert task.time_zone == "Europe/Berlin"
        assert task.dag.start_date.isoformat().startswith("2026-11-02T00:00:00")


class TestSilentSourceAlarm:
    def test_default_is_a_warning_after_24_hours_without_failing(self, monkeypatch):
        task = _task(monkeypatch)
        assert task.silence_after == timedelta(hours=24)
        assert task.fail_when_silent is False

    @pytest.mark.parametrize("value", ["true", "True", "1", "yes"])
    def test_the_variables_opt_in_to_failing_and_change_the_span(self, monkeypatch, value):
        task = _task(monkeypatch, ATLASSIAN_QRADAR_FAIL_WHEN_SILENT=value, ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES="360")
        assert task.fail_when_silent is True
        assert task.silence_after == timedelta(hours=6)

    def test_zero_turns_the_alarm_off_and_arguments_win_over_the_environment(self, monkeypatch):
        assert _task(monkeypatch, ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES="0").silence_after is None
        dag = build_audit_dag("factory_test", silence_after=timedelta(hours=2), fail_when_silent=True)
        assert dag.get_task(TASK_ID).silence_after == timedelta(hours=2)
        assert dag.get_task(TASK_ID).fail_when_silent is True


class TestExecutionTimeout:
    def test_every_window_task_has_a_time_bound_by_default(self, monkeypatch):
        assert _task(monkeypatch).execution_timeout == timedelta(hours=2)
        assert dag_factory.DEFAULT_EXECUTION_TIMEOUT == timedelta(hours=2)

    def test_the_variable_and_the_argument_change_it(self, monkeypatch):
        assert _task(monkeypatch, ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES="45").execution_timeout == timedelta(
            minutes=45
        )
        dag = build_audit_dag("factory_test", execution_timeout=timedelta(minutes=10))
        assert dag.get_task(TASK_ID).execution_timeout == timedelta(minutes=10)


class TestQueryIsNotATemplate:
    @pytest.mark.parametrize("query", ["{{ conn.qradar_default.host }}", "tag {{", "{% raw %}x"])
    def test_the_query_from_the_environment_reaches_the_api_as_written(self, monkeypatch, query):
        task = _task(monkeypatch, ATLASSIAN_QRADAR_QUERY=query)
        context = {
            "conn": {"qradar_default": {"host": "qradar.internal.example"}},
            "data_interval_start": "2026-11-20T10:00:00+00:00",
            "data_interval_end": "2026-11-20T11:00:00+00:00",
        }
        task.render_template_fields(context)
        assert task.query == query


class TestApiBudget:
    def test_every_run_of_the_dag_shares_the_slots(self, monkeypatch):
        from airflow_provider_atlassian_qradar.dag_factory import DEFAULT_API_SLOTS, api_share, build_audit_dag

        monkeypatch.delenv("ATLASSIAN_QRADAR_API_POOL", raising=False)
        task = build_audit_dag().get_task("deliver_audit_events")
        assert task.max_active_tis_per_dag == DEFAULT_API_SLOTS == 10
        assert task.requests_per_minute == api_share() == {"events-stream": 5.0, "events": 1.0}
        assert task.pool == "default_pool"

    def test_a_pool_shares_the_budget_with_other_dags(self, monkeypatch):
        from airflow_provider_atlassian_qradar.dag_factory import api_share, build_audit_dag

        monkeypatch.setenv("ATLASSIAN_QRADAR_API_POOL", "atlassian_api")
        task = build_audit_dag(api_slots=5, requests_per_minute={"events-stream": 40}).get_task("deliver_audit_events")
        assert task.pool == "atlassian_api" and task.max_active_tis_per_dag == 5
        assert task.requests_per_minute == {"events-stream": 8.0, "events": 2.0}
        assert api_share({"events-stream": 40}, slots=5) == task.requests_per_minute
        explicit = build_audit_dag(api_pool="org_b_api").get_task("deliver_audit_events")
        assert explicit.pool == "org_b_api"

    def test_runs_default_to_enough_for_every_slot(self):
        from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

        assert build_audit_dag().max_active_runs == 20
        many = build_audit_dag(api_slots=25)
        assert many.max_active_runs == 50 and many.get_task("deliver_audit_events").max_active_tis_per_dag == 25
        assert many.get_task("deliver_audit_events").requests_per_minute["events-stream"] == 2.0
        assert build_audit_dag(api_slots=25, max_active_runs=4).max_active_runs == 4

    def test_more_slots_than_the_path_allows_a_minute_is_refused(self, monkeypatch):
        from airflow_provider_atlassian_qradar.dag_factory import DagSettingsError, build_audit_dag

        monkeypatch.delenv("ATLASSIAN_QRADAR_QUERY", raising=False)
        with pytest.raises(DagSettingsError, match=r"api_slots=51 .* 50 requests a minute allowed on /events-stream"):
            build_audit_dag(api_slots=51)
        build_audit_dag(api_slots=50)
        # A filter reads /events, limited to 10 a minute: 25 slots would put up to 25 requests in one minute.
        with pytest.raises(DagSettingsError, match=r"filter is set.*api_slots <= 10"):
            build_audit_dag(api_slots=25, operator_kwargs={"product": ["jira"]})
        monkeypatch.setenv("ATLASSIAN_QRADAR_QUERY", "login")
        with pytest.raises(DagSettingsError, match="api_slots <= 10"):
            build_audit_dag(api_slots=11)
        build_audit_dag(api_slots=10)

    def test_zero_slots_is_refused(self):
        from airflow_provider_atlassian_qradar.dag_factory import DagSettingsError, build_audit_dag

        with pytest.raises(DagSettingsError, match="api_slots=0"):
            build_audit_dag(api_slots=0)
