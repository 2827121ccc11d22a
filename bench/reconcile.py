"""
Reconciliation cost: the extra API requests per window that the second read (late events) costs.

For each filter clock, window size and long-tail share, one hour that ended 10 minutes ago (the DAG's settle
time) is read twice, the way the operator does it:

- the **first read** runs against a simulator with the visibility model on (wall clock: events processed after
  now are not served yet, so the long tail, 1-6 h late, is invisible), and keeps a ``FirstReadMemory``;
- the **second read** runs against a twin simulator (same seed, same events) with visibility off: the state of the
  API 24 h later, when the whole tail has been processed. It walks newest-processed first and stops at the first
  event processed before the first read (``reconcile.select_late``), unless ``needs_second_read`` says the window
  needs none (processed clock).

Checked in every row: first-read ids + late ids = the window's ground truth, no id twice. Reported: requests of
each read, the late events found, and the second read's requests per window (the extra cost).

Run: ``python -m bench.reconcile [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.pipeline import API_KEY, ORG, atlassian_connection

CLOCKS = ("time", "processed")
SIZES = (100, 1_000, 10_000)
LATE_FRACTIONS = (0.0, 0.01)
PAGE_SIZE = 200


def _measure(clock: str, events_per_hour: int, late_fraction: float) -> dict[str, Any]:
    from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
    from airflow_provider_atlassian_qradar.reconcile import (
        DEFAULT_VISIBILITY_GAP,
        FirstReadMemory,
        needs_second_read,
        select_late,
    )
    from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import DEFAULT_RECONCILE_AFTER
    from airflow_provider_atlassian_qradar.windows import Window
    from sandbox.atlassian_sim import SimulatorConfig, run_in_thread

    now = datetime.now(timezone.utc)
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=10)
    window = Window(end - timedelta(hours=1), end)
    common: dict[str, Any] = {
        "org_id": ORG,
        "api_key": API_KEY,
        "start": window.start - timedelta(hours=1),
        "end": window.end,
        "events_per_hour": events_per_hour,
        "seed": 17,
        "late_fraction": late_fraction,
        "late_lag_seconds": (3600.0, 6 * 3600.0),
        "filter_clock": clock,
        "stream_requests_per_minute": 0,
    }
    with (
        run_in_thread(SimulatorConfig(**common)) as now_api,
        run_in_thread(SimulatorConfig(**common, visible_only_when_processed=False)) as later_api,
    ):
        os.environ["AIRFLOW_CONN_BENCH_NOW"] = atlassian_connection(now_api.base_url, page_size=PAGE_SIZE)
        os.environ["AIRFLOW_CONN_BENCH_LATER"] = atlassian_connection(later_api.base_url, page_size=PAGE_SIZE)
        first = AtlassianAuditLogHook("bench_now")
        memory = FirstReadMemory.starting(datetime.now(timezone.utc), DEFAULT_VISIBILITY_GAP)
        first_ids: list[str] = []
        for page in first.iter_pages(window.start, window.end):
            memory.note((event["id"] for event in page.events), page.processed_ms)
            first_ids += [event["id"] for event in page.events]
        observed = first.clock_evidence.clock
        skip = needs_second_read(memory, window, DEFAULT_RECONCILE_AFTER, observed)
        second = AtlassianAuditLogHook("bench_later")
        late_ids: list[str] = []
        if skip is None:
            pages = second.iter_pages(window.start, window.end, newest_first=True)
            for page in pages:
                chosen, done = select_late(page.events, page.processed_ms, memory)
                late_ids += [page.events[index]["id"] for index in chosen]
                if done:
                    pages.close()
                    break
        truth = later_api.ground_truth(window.start, window.end)
    delivered = first_ids + late_ids
    return {
        "clock": clock,
        "events_per_hour": events_per_hour,
        "late_fraction": late_fraction,
        "window_events": len(truth),
        "clock_observed": observed,
        "first_read_requests": first.stats.requests,
        "late_found": len(late_ids),
        "second_read_requests": second.stats.requests,
        "second_read_skipped": skip,
        "remembered_ids": len(memory.ids),
        "exactly_once": sorted(delivered) == sorted(truth) and len(set(delivered)) == len(delivered),
    }


def run(sizes: tuple[int, ...] = SIZES, late_fractions: tuple[float, ...] = LATE_FRACTIONS) -> dict[str, Any]:
    """Measure every (clock, size, tail) combination; return the rows and the worst extra cost."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
    rows = [_measure(clock, size, tail) for clock in CLOCKS for size in sizes for tail in late_fractions]
    by_clock = {clock: max(row["second_read_requests"] for row in rows if row["clock"] == clock) for clock in CLOCKS}
    return {
        "rows": rows,
        "max_second_read_requests": by_clock,
        "all_exactly_once": all(row["exactly_once"] for row in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run((100, 1_000)) if args.quick else run(), indent=2))


if __name__ == "__main__":
    main()
