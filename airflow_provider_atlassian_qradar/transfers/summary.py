"""What a window's task reports: its XCom summary, its metrics, and the extra of its asset event."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import Asset

from airflow_provider_atlassian_qradar import metrics
from airflow_provider_atlassian_qradar.silence import Verdict
from airflow_provider_atlassian_qradar.transfers.delivery import Sent
from airflow_provider_atlassian_qradar.windows import ClockEvidence, Window


def window_summary(
    window: Window,
    *,
    fetched: int,
    sent: int,
    started: float,
    stats: Any,
    truncated: int = 0,
    note: str | None = None,
) -> dict[str, Any]:
    """The summary of one window's delivery (the task's XCom), ``stats`` being the Atlassian hook's (or None)."""
    summary: dict[str, Any] = {
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "fetched": fetched,
        "sent": sent,
        "duplicates_skipped": stats.duplicates_skipped if stats else 0,
        "truncated": truncated,
        "api_requests": stats.requests if stats else 0,
        "rate_limit_waits": stats.rate_limited if stats else 0,
        "seconds": round(time.monotonic() - started, 3),
    }
    if note:
        summary["note"] = note
    return summary


def first_read_summary(
    window: Window,
    fetched: int,
    resumed_after: int,
    sent: Sent,
    started: float,
    stats: Any,
    evidence: ClockEvidence,
) -> dict[str, Any]:
    """The summary of a window's first read, with the clock its from/to filter looked like."""
    summary = window_summary(
        window,
        fetched=fetched,
        sent=resumed_after + sent.events,
        started=started,
        stats=stats,
        truncated=sent.truncated,
    )
    summary["resumed_after"] = resumed_after
    summary["filter_clock"] = evidence.clock
    summary["clock_evidence"] = {
        "time_outside_window": evidence.time_outside,
        "processed_outside_window": evidence.processed_outside,
        "both_outside_window": evidence.both_outside,
    }
    return summary


def iso_ms(epoch_ms: int) -> str:
    """An epoch-ms instant as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000.0, tz=timezone.utc).isoformat(timespec="milliseconds")


def emit_window_metrics(
    summary: dict[str, Any], tags: dict[str, str], *, newest_processed_ms: int | None, verdict: Verdict | None
) -> None:
    """Send the window's metrics through Airflow's stats client (a no-op unless metrics are configured)."""
    lag = None
    if newest_processed_ms is not None:
        lag = time.time() - newest_processed_ms / 1000.0
    values = metrics.window_metrics(summary, lag_seconds=lag)
    if verdict is not None and verdict.silence is not None:
        values += metrics.silence_metrics(verdict.silence.total_seconds(), silent=verdict.silent)
    metrics.emit(values, tags)


def record_asset_event(context: Any, outlets: Iterable[Any], org_id: str, summary: dict[str, Any]) -> None:
    """Put the organization and what was sent on the task's asset events (when Airflow gives outlet events)."""
    outlet_events = context.get("outlet_events")
    if outlet_events is None:
        return
    for outlet in outlets:
        if isinstance(outlet, Asset):
            outlet_events[outlet].extra = {
                "org_id": org_id,
                "window_start": summary["window_start"],
                "window_end": summary["window_end"],
                "sent": summary["sent"],
            }
