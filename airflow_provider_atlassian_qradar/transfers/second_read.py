"""Late events: remember what a window's first read delivered, and later read it once more for what it missed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
from airflow_provider_atlassian_qradar.leef import LeefOptions
from airflow_provider_atlassian_qradar.reconcile import FirstReadMemory, needs_second_read, select_late
from airflow_provider_atlassian_qradar.transfers.delivery import Batch, NewestProcessed, send_batches
from airflow_provider_atlassian_qradar.transfers.reconcile_store import ReconcileStore
from airflow_provider_atlassian_qradar.windows import Window


def remember_first_read(
    memories: ReconcileStore,
    window: Window,
    memory: FirstReadMemory,
    clock: str,
    *,
    filtered: bool,
    reconcile_after: timedelta,
    log: Any,
) -> None:
    """Keep what the window's second read needs, or drop any stale memory when it needs no second read."""
    reason = "filtered windows (/events) carry no processedAt" if filtered else None
    reason = reason or needs_second_read(memory, window, reconcile_after, clock)
    if reason:
        log.info("window %s needs no second read: %s", window, reason)
        memories.forget(window)
        return
    memories.remember(window, memory)


def second_read(
    older: Window,
    atlassian: AtlassianAuditLogHook,
    sender: Any,
    leef: LeefOptions,
    memories: ReconcileStore,
    newest: NewestProcessed,
    log: Any,
) -> dict[str, Any]:
    """Read ``older`` once more and send what its first read missed; return the reconcile summary."""
    result: dict[str, Any] = {"window_start": older.start.isoformat(), "window_end": older.end.isoformat()}
    memory = memories.recall(older)
    if memory is None:
        log.info("reconcile %s: no first-read memory (never read, read late, or done): nothing to do", older)
        return {**result, "late_delivered": 0, "api_requests": 0, "note": "nothing to reconcile"}
    requests_before = atlassian.stats.requests
    delivered_ids: list[str] = []

    def walk(newest_first: bool) -> Iterator[Batch]:
        pages = atlassian.iter_pages(older.start, older.end, newest_first=newest_first)
        try:
            for page in pages:
                chosen, done = select_late(page.events, page.processed_ms, memory, newest_first=newest_first)
                events = [page.events[index] for index in chosen]
                newest.note(page.processed_ms[index] for index in chosen)
                delivered_ids.extend(event["id"] for event in events)
                yield Batch(events, [page.times_ms[index] for index in chosen], list(delivered_ids))
                if done:
                    return  # newest first: the rest of the window was processed before the first read
        finally:
            pages.close()

    def on_safe(ids: list[str]) -> None:
        memory.note(ids, [None] * len(ids))
        memories.remember(older, memory)

    try:
        sent = send_batches(walk(True), sender, leef, on_safe, log, time.monotonic())
    except AtlassianApiError as err:
        if err.status != 400 or delivered_ids:
            raise
        log.warning("the API refused sortOrder=desc (%s); reconciling %s in ascending order", err, older)
        sent = send_batches(walk(False), sender, leef, on_safe, log, time.monotonic())
    memories.forget(older)
    requests = atlassian.stats.requests - requests_before
    log.info(
        "reconciled window %s: %d late events delivered that its first read had not seen (%d API requests)",
        older,
        sent.events,
        requests,
    )
    return {**result, "late_delivered": sent.events, "api_requests": requests}
