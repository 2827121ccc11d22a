"""
Benchmark of the LEEF encoder against ``json.loads`` of the same events.

``python -m bench.encoder --events 20000`` prints and returns encode events/s, json.loads events/s and their
time ratio (encode / json.loads; the target is <= 1.0). Events come from the Atlassian simulator when it is
importable, else from a small built-in generator of the same shape.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_atlassian_qradar.leef import format_event

REPEATS = 5
_ACTIONS = ("user_login", "api_token_created", "user_added_to_group", "product_access_granted", "policy_updated")


def _simulator_events(count: int) -> list[dict[str, Any]] | None:
    try:
        from sandbox.atlassian_sim import SimulatorConfig, generate_events
    except ImportError:
        return None
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events_per_hour = 3600
    hours = count // events_per_hour + 1
    config = SimulatorConfig(
        org_id="bench-org",
        api_key="bench-key",
        start=start,
        end=start + timedelta(hours=hours),
        events_per_hour=events_per_hour,
    )
    return generate_events(config)[:count]


def _built_in_events(count: int) -> list[dict[str, Any]]:
    """Events shaped like the API reference examples (stream form, with processedAt)."""
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = []
    for number in range(count):
        moment = start + timedelta(milliseconds=number * 997)
        event_id = str(uuid.UUID(int=rng.getrandbits(128)))
        account_id = f"712020:{uuid.UUID(int=rng.getrandbits(128))}"
        events.append(
            {
                "id": event_id,
                "type": "events",
                "attributes": {
                    "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "processedAt": (moment + timedelta(seconds=rng.randint(0, 90)))
                    .isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
                    "action": rng.choice(_ACTIONS),
                    "actor": {
                        "id": account_id,
                        "name": f"User {number % 500}",
                        "email": f"user{number % 500}@example.com",
                        "links": {"self": f"https://api.atlassian.com/users/{account_id}/manage/profile"},
                    },
                    "context": [{"id": "g-1", "type": "groups", "attributes": {"name": "jira-admins"}}],
                    "container": [
                        {
                            "id": "bench-org",
                            "type": "orgs",
                            "attributes": {"name": "acme"},
                            "links": {"alt": "https://admin.atlassian.com/o/bench-org"},
                        }
                    ],
                    "location": {"ip": f"198.51.100.{number % 250}", "countryName": "X", "city": "Y"},
                },
                "links": {"self": f"https://api.atlassian.com/admin/v1/orgs/bench-org/events/{event_id}"},
                "message": {"content": "Event", "format": "simple"},
            }
        )
    return events


def _best_of(repeats: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def run(events: int) -> dict[str, Any]:
    """
    Measure json.loads and format_event over ``events`` realistic events (best of 5 runs each).

    :param events: number of events.
    :return: events, source, encode_events_per_s, json_loads_events_per_s, ratio (encode time / loads time).
    """
    generated = _simulator_events(events)
    source = "sandbox.atlassian_sim"
    if generated is None:
        generated, source = _built_in_events(events), "built-in generator"
    texts = [json.dumps(event) for event in generated]
    parsed = [json.loads(text) for text in texts]
    loads = json.loads
    loads_seconds = _best_of(REPEATS, lambda: [loads(text) for text in texts])
    encode_seconds = _best_of(REPEATS, lambda: [format_event(event, org_id="bench-org") for event in parsed])
    result = {
        "events": len(texts),
        "source": source,
        "mean_json_bytes": round(sum(map(len, texts)) / len(texts)),
        "encode_events_per_s": round(len(texts) / encode_seconds),
        "json_loads_events_per_s": round(len(texts) / loads_seconds),
        "ratio": round(encode_seconds / loads_seconds, 3),
    }
    print(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point: ``python -m bench.encoder --events N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20000, help="number of events (default 20000)")
    arguments = parser.parse_args(argv)
    return run(arguments.events)


if __name__ == "__main__":
    main()
