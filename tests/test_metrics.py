"""The window summary -> metrics table, and that a failing stats client never fails delivery."""

from __future__ import annotations

import logging
from pathlib import Path

from airflow_provider_atlassian_qradar import metrics
from airflow_provider_atlassian_qradar.metrics import Metric, emit, window_metrics

SUMMARY = {
    "fetched": 120,
    "sent": 118,
    "duplicates_skipped": 2,
    "truncated": 3,
    "api_requests": 7,
    "rate_limit_waits": 1,
    "seconds": 4.5,
    "reconcile": {"late_delivered": 5, "api_requests": 2},
}


class TestWindowMetrics:
    def test_every_summary_count_becomes_its_counter(self):
        got = {metric.name: metric for metric in window_metrics(SUMMARY, lag_seconds=61.25)}
        assert got == {
            "atlassian_qradar.events_fetched": Metric("incr", "atlassian_qradar.events_fetched", 120),
            "atlassian_qradar.events_sent": Metric("incr", "atlassian_qradar.events_sent", 118),
            "atlassian_qradar.duplicates_skipped": Metric("incr", "atlassian_qradar.duplicates_skipped", 2),
            "atlassian_qradar.late_events_delivered": Metric("incr", "atlassian_qradar.late_events_delivered", 5),
            "atlassian_qradar.events_truncated": Metric("incr", "atlassian_qradar.events_truncated", 3),
            "atlassian_qradar.api_requests": Metric("incr", "atlassian_qradar.api_requests", 7),
            "atlassian_qradar.rate_limit_waits": Metric("incr", "atlassian_qradar.rate_limit_waits", 1),
            "atlassian_qradar.window_duration": Metric("timing", "atlassian_qradar.window_duration", 4500.0),
            "atlassian_qradar.lag_seconds": Metric("gauge", "atlassian_qradar.lag_seconds", 61.25),
        }

    def test_an_empty_window_still_reports_zero_and_no_lag_when_unknown(self):
        got = {m.name: m.value for m in window_metrics({"fetched": 0, "sent": 0, "seconds": 0.2}, lag_seconds=None)}
        assert got["atlassian_qradar.events_sent"] == 0
        assert got["atlassian_qradar.late_events_delivered"] == 0
        assert "atlassian_qradar.lag_seconds" not in got


class TestEmit:
    def test_each_kind_goes_to_its_client_call_with_the_tags(self, monkeypatch):
        calls = []

        class Recorder:
            @staticmethod
            def incr(name, count, *, tags):
                calls.append(("incr", name, count, tags))

            @staticmethod
            def gauge(name, value, *, tags):
                calls.append(("gauge", name, value, tags))

            @staticmethod
            def timing(name, value, *, tags):
                calls.append(("timing", name, value, tags))

        monkeypatch.setattr(metrics, "_stats", lambda: Recorder)
        tags = {"dag_id": "d", "conn_id": "c"}
        emit([Metric("incr", "a", 3), Metric("gauge", "b", 1.5), Metric("timing", "t", 20.0)], tags)
        assert calls == [("incr", "a", 3, tags), ("gauge", "b", 1.5, tags), ("timing", "t", 20.0, tags)]

    def test_a_broken_client_is_logged_not_raised(self, monkeypatch, caplog):
        class Broken:
            @staticmethod
            def incr(*args, **kwargs):
                raise OSError("statsd host unreachable")

        monkeypatch.setattr(metrics, "_stats", lambda: Broken)
        with caplog.at_level(logging.WARNING):
            emit([Metric("incr", "a", 1)], {})
        assert "statsd host unreachable" in caplog.text

    def test_airflow_client_is_found_and_unconfigured_it_is_a_quiet_no_op(self, caplog):
        # Airflow's real client, with no metrics backend configured in this process: no error, no warning
        # (a wrong import path or call signature would show up here as the warning of emit()).
        with caplog.at_level(logging.WARNING):
            emit(window_metrics(SUMMARY, lag_seconds=1.0), {"dag_id": "d", "conn_id": "c"})
        assert "could not send metrics" not in caplog.text


def test_every_metric_name_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    names = [*metrics.COUNTERS.values(), metrics.WINDOW_DURATION, metrics.LAG, metrics.SILENCE, metrics.SILENT_SOURCE]
    for name in names:
        assert f"`{metrics.metric_name(name)}`" in docs, f"docs/operations.md does not list {name}"
