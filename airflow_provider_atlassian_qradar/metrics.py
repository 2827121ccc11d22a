"""Per-window metrics through Airflow's own stats client (StatsD, Datadog or OpenTelemetry, as configured).

Airflow decides where metrics go: ``[metrics] statsd_on`` (with ``statsd_host``/``statsd_port``/``statsd_prefix``,
default prefix ``airflow``), ``statsd_datadog_enabled`` or ``otel_on``. With none of them on, Airflow's client is a
no-op and so is everything here. Names and tags are listed in docs/operations.md; the metric names are fixed
(no organization or DAG in them), the organization and DAG are tags, which plain StatsD drops unless
``[metrics] statsd_influxdb_enabled`` is on (then they are appended as ``,dag_id=...,conn_id=...``).

:func:`window_metrics` is pure (it turns a window's summary into metrics); :func:`emit` hands them to Airflow and
never fails the task: a metrics backend that is down must not stop audit events from flowing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Every metric name starts with this (after Airflow's own ``statsd_prefix``).
METRIC_PREFIX = "atlassian_qradar"

#: summary key -> counter name: each window adds its count (0 included, so "nothing delivered" is visible).
COUNTERS: Mapping[str, str] = {
    "fetched": "events_fetched",
    "sent": "events_sent",
    "duplicates_skipped": "duplicates_skipped",
    "late_delivered": "late_events_delivered",
    "truncated": "events_truncated",
    "api_requests": "api_requests",
    "rate_limit_waits": "rate_limit_waits",
}
#: Timer: how long the window's task worked (settle wait excluded), in milliseconds.
WINDOW_DURATION = "window_duration"
#: Gauge: now minus the newest processedAt delivered, in seconds.
LAG = "lag_seconds"
#: Gauge: how much window time has passed since the last window that delivered an event, in seconds.
SILENCE = "silence_seconds"
#: Counter: +1 for each window that found the source silent for the alarm span or longer (+0 for the others).
SILENT_SOURCE = "silent_source"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One value for Airflow's stats client."""

    kind: Literal["incr", "gauge", "timing"]
    name: str
    value: float


def metric_name(short: str) -> str:
    """The full name of a metric (``atlassian_qradar.<short>``), before Airflow's ``statsd_prefix``."""
    return f"{METRIC_PREFIX}.{short}"


def window_metrics(summary: Mapping[str, Any], *, lag_seconds: float | None) -> list[Metric]:
    """Turn a window's XCom summary into the metrics of that window.

    :param summary: the operator's summary; ``reconcile.late_delivered`` feeds the late-events counter and
        ``reconcile.api_requests`` is added to the window's API requests.
    :param lag_seconds: now minus the newest processedAt delivered, or None when it is not known.
    :return: the counters, the duration timer and (when known) the lag gauge.
    """
    reconcile = summary.get("reconcile") or {}
    values = dict(summary)
    values["late_delivered"] = reconcile.get("late_delivered", 0)
    values["api_requests"] = int(summary.get("api_requests", 0))
    metrics = [Metric("incr", metric_name(name), int(values.get(key, 0) or 0)) for key, name in COUNTERS.items()]
    metrics.append(Metric("timing", metric_name(WINDOW_DURATION), float(summary.get("seconds", 0.0)) * 1000.0))
    if lag_seconds is not None:
        metrics.append(Metric("gauge", metric_name(LAG), max(0.0, round(lag_seconds, 3))))
    return metrics


def silence_metrics(silence_seconds: float, *, silent: bool) -> list[Metric]:
    """The silent-source alarm's metrics for a judged window: the silence gauge, and the counter (+1 if tripped).

    :param silence_seconds: window time since the last window that delivered an event.
    :param silent: whether the alarm tripped for this window.
    """
    return [
        Metric("gauge", metric_name(SILENCE), max(0.0, silence_seconds)),
        Metric("incr", metric_name(SILENT_SOURCE), 1 if silent else 0),
    ]


def _stats() -> Any:
    try:
        from airflow.sdk.observability.stats import Stats
    except ImportError:  # Airflow 3.1 keeps the client in core
        from airflow.stats import Stats  # type: ignore[no-redef,attr-defined,unused-ignore]
    return Stats


def emit(metrics: Iterable[Metric], tags: Mapping[str, str]) -> None:
    """Send metrics through Airflow's stats client; log (never raise) if the client fails.

    :param metrics: what to send.
    :param tags: ``dag_id`` and ``conn_id`` (the organization's connection), passed to the client as tags.
    """
    try:
        stats = _stats()
        for metric in metrics:
            if metric.kind == "incr":
                stats.incr(metric.name, int(metric.value), tags=dict(tags))
            elif metric.kind == "gauge":
                stats.gauge(metric.name, metric.value, tags=dict(tags))
            else:
                stats.timing(metric.name, metric.value, tags=dict(tags))
    except Exception as err:  # a metrics backend must never stop delivery
        log.warning("could not send metrics through Airflow's stats client: %s", err)
