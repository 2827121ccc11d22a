"""Peak memory of reading one window through AtlassianAuditLogHook, for growing window sizes.

The simulator runs in this process; each measured read runs in a fresh child process that only iterates the
window (json parsing included), so its peak RSS is the hook's alone. Usage: ``python -m bench.hook_memory``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox.atlassian_sim import SimulatorConfig, run_in_thread

ORG, KEY = "bench-org", "bench-key"


def _measure_child(base_url: str, start: str, end: str) -> None:
    from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hook = AtlassianAuditLogHook()
    count = sum(1 for _ in hook.iter_events(datetime.fromisoformat(start), datetime.fromisoformat(end)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = {"events": count, "requests": hook.stats.requests, "peak_rss_kb": peak, "import_rss_kb": baseline}
    print(json.dumps(row))


def measure(events: int, page_size: int = 200) -> dict[str, Any]:
    """Serve a one-hour window of ``events`` events and return the child's event count and peak RSS."""
    hour = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    config = SimulatorConfig(
        org_id=ORG,
        api_key=KEY,
        start=hour,
        end=hour + timedelta(hours=1),
        events_per_hour=events,
        stream_requests_per_minute=0,
        events_requests_per_minute=0,
    )
    with run_in_thread(config) as sim:
        conn = {
            "conn_type": "atlassian_admin",
            "host": sim.base_url,
            "login": ORG,
            "password": KEY,
            "extra": {"page_size": page_size, "stream_requests_per_minute": 0},
        }
        env = dict(os.environ, AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT=json.dumps(conn))
        env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
        args = [sys.executable, "-m", "bench.hook_memory", "--child", sim.base_url, hour.isoformat()]
        args.append((hour + timedelta(hours=1)).isoformat())
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if result["events"] != events:
        raise AssertionError(f"read {result['events']} events, expected {events}")
    return result


def run(sizes: tuple[int, ...] = (1_000, 50_000)) -> dict[str, Any]:
    """Measure each size; report peak RSS per size and the growth from the smallest to the largest."""
    rows = {size: measure(size) for size in sizes}
    small, large = rows[min(sizes)], rows[max(sizes)]
    return {
        "sizes": {str(size): row for size, row in rows.items()},
        "peak_rss_growth_mb": round((large["peak_rss_kb"] - small["peak_rss_kb"]) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("BASE_URL", "START", "END"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="1000,50000")
    args = parser.parse_args()
    if args.child:
        _measure_child(*args.child)
        return
    print(json.dumps(run(tuple(int(s) for s in args.sizes.split(","))), indent=2))


if __name__ == "__main__":
    main()
