"""
API efficiency: requests per window, and 429s when the DAG's default number of windows run at once.

- **Requests per window** for 0, 100 and 10k events: our hook (``AtlassianAuditLogHook.iter_pages``, connection
  defaults) next to a replay of the QRadar Universal Cloud REST API connector's request pattern for Atlassian
  (``qmasters-ltd/qradar-universal-cloud-rest-api`` ``atlassian/atlassian-workflow.xml``; atlassian-api.md §4):
  ``GET events-stream?from=<bookmark>&limit=100&order=ASC``, then, while ``meta.next`` is set and
  ``meta.total >= meta.page_size``, the same with ``cursor``; no pacing, no retry, abort on any non-200.
  ``meta.total`` is undocumented and the simulator does not send it: the replay reads it as the page's event count
  (the only reading under which the connector pages at all). Both run against the same simulator, unlimited.
  Target: ours <= ceil(n / page_size) + 1.
- **Connector against the rate limit**: the same replay for 10k events against the simulator's 50 requests/min.
- **Default concurrency**: the DAG's ``api_slots`` windows of 10k events read at once, each hook with the
  DAG's per-window share of the budget, against a simulator enforcing 50 requests/min. Target: zero 429s.

Run: ``python -m bench.api_efficiency [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import requests

from bench.pipeline import API_KEY, ORG, atlassian_connection, bench_hour

STREAM_LIMIT_PER_MINUTE = 50
CONNECTOR_EVENTS_PER_FETCH = 100
SIZES = (0, 100, 10_000)


@contextmanager
def atlassian_env(base_url: str, stream_rpm: float | None = 0) -> Iterator[None]:
    """Point ``atlassian_admin_default`` at the simulator for hooks built in this process; restore after."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
    previous = os.environ.get("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT")
    if stream_rpm is None:  # the connection's defaults: 50/min on events-stream
        conn = json.loads(atlassian_connection(base_url))
        conn["extra"] = {}
        os.environ["AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT"] = json.dumps(conn)
    else:
        os.environ["AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT"] = atlassian_connection(base_url, stream_rpm=stream_rpm)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", None)
        else:
            os.environ["AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT"] = previous


def _simulator(hours: int, events_per_hour: int, stream_rpm: int) -> Any:
    from sandbox.atlassian_sim import SimulatorConfig, run_in_thread

    hour = bench_hour()
    return run_in_thread(
        SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=hour,
            end=hour + timedelta(hours=hours),
            events_per_hour=events_per_hour,
            stream_requests_per_minute=stream_rpm,
            events_requests_per_minute=0,
        )
    )


def _stream_requests(sim: Any) -> list[Any]:
    return [record for record in sim.requests if record.path.endswith("/events-stream")]


def replay_connector(base_url: str, start: datetime) -> dict[str, Any]:
    """The UCR connector's Atlassian workflow, one poll from ``start`` (its bookmark); see the module docstring."""
    url = f"{base_url}/admin/v1/orgs/{ORG}/events-stream"
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
    params: dict[str, Any] = {
        "from": int(start.timestamp() * 1000),
        "limit": CONNECTOR_EVENTS_PER_FETCH,
        "order": "ASC",
    }
    requests_sent = events = 0
    with requests.Session() as session:
        while True:
            response = session.get(url, params=params, headers=headers, timeout=60)
            requests_sent += 1
            if response.status_code != 200:
                return {"requests": requests_sent, "events": events, "aborted_on": response.status_code}
            body = response.json()
            data, meta = body.get("data") or [], body.get("meta") or {}
            events += len(data)
            total = meta.get("total", len(data))
            if not (meta.get("next") and total >= (meta.get("page_size") or CONNECTOR_EVENTS_PER_FETCH)):
                return {"requests": requests_sent, "events": events, "aborted_on": None}
            params = {"cursor": meta["next"], "order": "ASC", "limit": CONNECTOR_EVENTS_PER_FETCH}


def requests_per_window(events: int) -> dict[str, Any]:
    """Our hook and the connector replay over one window of ``events`` events, on an unlimited simulator."""
    from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook

    with _simulator(1, events, stream_rpm=0) as sim:
        hour = bench_hour()
        with atlassian_env(sim.base_url):
            hook = AtlassianAuditLogHook()
            ours_events = sum(len(page.events) for page in hook.iter_pages(hour, hour + timedelta(hours=1)))
            page_size = hook.page_size
        ours = len(_stream_requests(sim))
        sim.reset_counters()
        connector = replay_connector(sim.base_url, hour)
        connector["requests_seen_by_server"] = len(_stream_requests(sim))
    bound = math.ceil(events / page_size) + 1
    if ours_events != events or connector["events"] != events:
        raise AssertionError(f"read {ours_events} (ours) / {connector['events']} (connector) of {events} events")
    return {
        "events": events,
        "page_size": page_size,
        "ours_requests": ours,
        "target_max_requests": bound,
        "met": ours <= bound,
        "connector_requests": connector["requests"],
        "ratio_ours_to_connector": round(ours / connector["requests"], 2),
    }


def connector_under_rate_limit(events: int) -> dict[str, Any]:
    """The connector replay for one window against the simulator's 50 requests/min (no pacing, no retry)."""
    with _simulator(1, events, stream_rpm=STREAM_LIMIT_PER_MINUTE) as sim:
        result = replay_connector(sim.base_url, bench_hour())
        statuses = [record.status for record in _stream_requests(sim)]
    result.update(window_events=events, rate_limited=statuses.count(429), delivered_share=result["events"] / events)
    return result


def default_concurrency(events: int) -> dict[str, Any]:
    """The DAG's default number of windows, read at once with its per-window budget, against 50 requests/min."""
    from airflow_provider_atlassian_qradar.atlassian_api import STREAM
    from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag
    from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook

    dag = build_audit_dag()
    task: Any = dag.get_task("deliver_audit_events")
    windows, share = int(task.max_active_tis_per_dag), dict(task.requests_per_minute)
    hour = bench_hour()
    hooks: list[Any] = []
    errors: list[BaseException] = []
    counts: list[int] = []

    def read(window_start: datetime) -> None:
        try:
            hook = AtlassianAuditLogHook(requests_per_minute=share)
            hooks.append(hook)
            counts.append(sum(len(p.events) for p in hook.iter_pages(window_start, window_start + timedelta(hours=1))))
        except BaseException as err:  # reported below; a thread must not die silently
            errors.append(err)

    with _simulator(windows, events, stream_rpm=STREAM_LIMIT_PER_MINUTE) as sim:
        with atlassian_env(sim.base_url, stream_rpm=None):
            threads = [threading.Thread(target=read, args=(hour + timedelta(hours=i),)) for i in range(windows)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - started
        statuses = [record.status for record in _stream_requests(sim)]
    if errors:
        raise RuntimeError(f"a window failed: {errors[0]!r}")
    allowed = statuses.count(200)
    bound_seconds = max(0.0, (allowed - STREAM_LIMIT_PER_MINUTE) / STREAM_LIMIT_PER_MINUTE * 60.0)
    return {
        "windows": windows,
        "events_per_window": events,
        "events_read": sum(counts),
        "per_window_budget_rpm": share.get(STREAM),
        "simulator_limit_rpm": STREAM_LIMIT_PER_MINUTE,
        "requests": len(statuses),
        "rate_limited_429": statuses.count(429),
        "hook_rate_limited": sum(hook.stats.rate_limited for hook in hooks),
        "wall_seconds": round(wall, 1),
        "rate_limit_bound_seconds": round(bound_seconds, 1),
        "met": statuses.count(429) == 0,
    }


def run(sizes: tuple[int, ...] = SIZES, concurrency_events: int = 10_000) -> dict[str, Any]:
    """
    All three parts; see the module docstring.

    :param sizes: window sizes for the requests-per-window comparison.
    :param concurrency_events: events per window in the connector-under-limit and concurrency parts.
    """
    result: dict[str, Any] = {"requests_per_window": [requests_per_window(size) for size in sizes]}
    result["connector_under_rate_limit"] = connector_under_rate_limit(concurrency_events)
    print("  api bench: parallel windows against 50 requests/min (paced: minutes)...", flush=True)
    result["default_concurrency"] = default_concurrency(concurrency_events)
    return result


def main() -> None:
    """Command line: ``python -m bench.api_efficiency [--quick]``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small windows (seconds instead of minutes)")
    args = parser.parse_args()
    result = run((0, 100, 1000), 500) if args.quick else run()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
