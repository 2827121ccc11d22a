"""
Command line: serve a simulator until SIGINT/SIGTERM.

``python -m sandbox.atlassian_sim --port 8081 --org-id demo-org --api-key demo-key --days 3``

The event range is the last ``--days`` days ending now, so recent events become visible progressively as
their ``processedAt`` passes. Prints one JSON line ``{"base_url", "org_id", "events"}`` once listening.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from types import FrameType

from sandbox.atlassian_sim.config import SimulatorConfig
from sandbox.atlassian_sim.server import Simulator


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.atlassian_sim", description="Local Atlassian organization audit-log API simulator"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 in containers)")
    parser.add_argument("--port", type=int, default=8081, help="TCP port; 0 picks a free one")
    parser.add_argument("--org-id", default="demo-org")
    parser.add_argument("--api-key", default="demo-key")
    parser.add_argument("--days", type=float, default=3, help="event range: the last N days ending now")
    parser.add_argument("--events-per-hour", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hostile-ratio", type=float, default=0.0)
    parser.add_argument("--stream-rpm", type=int, default=50, help="events-stream requests/minute; 0 = unlimited")
    parser.add_argument("--events-rpm", type=int, default=10, help="/events requests/minute; 0 = unlimited")
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--default-page-size", type=int, default=200)
    parser.add_argument("--lag-max-seconds", type=float, default=600, help="processedAt = time + U(0, this)")
    parser.add_argument("--retention-days", type=int, default=180)
    parser.add_argument(
        "--filter-clock", choices=("time", "processed"), default="time", help="clock from/to filter on (stream)"
    )
    parser.add_argument("--late-fraction", type=float, default=0.0, help="share of events processed late")
    parser.add_argument(
        "--late-lag-hours", type=float, nargs=2, default=(1.0, 6.0), metavar=("MIN", "MAX"), help="their lag"
    )
    parser.add_argument("--empty-page-cursor", action="store_true", help="empty stream pages keep a cursor")
    parser.add_argument("--base-url-for-links", default=None, help="host used in page links (default: own URL)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until a signal arrives; return the exit status."""
    args = build_parser().parse_args(argv)
    end = datetime.now(timezone.utc)
    config = SimulatorConfig(
        org_id=args.org_id,
        api_key=args.api_key,
        start=end - timedelta(days=args.days),
        end=end,
        events_per_hour=args.events_per_hour,
        seed=args.seed,
        hostile_ratio=args.hostile_ratio,
        default_page_size=args.default_page_size,
        max_page_size=args.max_page_size,
        stream_requests_per_minute=args.stream_rpm,
        events_requests_per_minute=args.events_rpm,
        retention_days=args.retention_days,
        processing_lag_max_seconds=args.lag_max_seconds,
        filter_clock=args.filter_clock,
        late_fraction=args.late_fraction,
        late_lag_seconds=(args.late_lag_hours[0] * 3600, args.late_lag_hours[1] * 3600),
        empty_page_cursor=args.empty_page_cursor,
        base_url_for_links=args.base_url_for_links,
    )
    simulator = Simulator(config, host=args.host, port=args.port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    simulator.start()
    print(
        json.dumps({"base_url": simulator.base_url, "org_id": config.org_id, "events": simulator.event_count}),
        flush=True,
    )
    # Wait in short slices: signal handlers run only between bytecodes of the main thread.
    while not stop.wait(0.2):
        pass
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
