"""
One API budget for every run (issue 15): the real scheduler, PostgreSQL metadata database, simulator at 50/min.

Three scenarios, each in a fresh Airflow (LocalExecutor, a throw-away PostgreSQL from ``sandbox.services``) with
DAGs built by ``build_audit_dag`` (settle 0, so no window waits) and a real syslog-ng per DAG:

1. **overlap**: a DAG whose catchup of the last ``catchup_windows`` hours starts when it is unpaused, and at the
   same moment a ``backfill_windows``-hour backfill of the week before, both at ``events_per_hour`` (one request per
   window with pages of 500). Target: wall <= 1.15x the rate-limit bound, 0 x 429.
2. **low_volume**: a ``low_windows``-hour backfill (30 days) of a quiet organization, one request per window.
   Target: <= 1.2x. Here Airflow's per-task overhead, not the API, is the enemy.
3. **two_dags**: two DAGs on the same organization sharing one pool, each backfilling ``two_dag_windows`` hours at
   once. Target: 0 x 429.

Wall time runs from the first backfill request (and unpause) to the last run finishing; the bound is the
successful events-stream requests / 50 per minute. Every scenario checks every event exactly once per DAG.

Run: ``python -m bench.budget [--quick] [--only overlap,low_volume,two_dags] [--api-slots N]``
(default N: the factory's ``DEFAULT_API_SLOTS``).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_provider_atlassian_qradar.dag_factory import DEFAULT_API_SLOTS
from bench.pipeline import API_KEY, ORG

STREAM_LIMIT_PER_MINUTE = 50
_EVENT_ID = re.compile(rb"\teventId=([^\t\n]+)")
DAG_TEMPLATE = """
import pendulum
from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

{name} = build_audit_dag(
    "{name}",
    qradar_conn_id="qradar_{name}",
    start_date=pendulum.parse("{start}"),
    catchup={catchup},
    api_slots={slots},
    api_pool={pool!r},
    reconcile_after=pendulum.duration(minutes=0),
)
"""


def _scenario(
    label: str,
    dags: dict[str, dict[str, Any]],
    backfills: dict[str, tuple[datetime, datetime]],
    events_per_hour: int,
    event_range: tuple[datetime, datetime],
    expected: dict[str, list[tuple[datetime, datetime]]],
    pool_slots: int | None = None,
) -> dict[str, Any]:
    from sandbox.airflow_stack import AirflowHome, airflow_services
    from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
    from sandbox.receivers import SyslogNg
    from sandbox.services import Postgres

    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=event_range[0],
        end=event_range[1],
        events_per_hour=events_per_hour,
        seed=23,
        processing_lag_max_seconds=60,
        stream_requests_per_minute=STREAM_LIMIT_PER_MINUTE,
        events_requests_per_minute=0,
    )
    with tempfile.TemporaryDirectory(prefix=f"bench-budget-{label}-") as scratch, ExitStack() as stack:
        directory = Path(scratch)
        sim = stack.enter_context(run_in_thread(config))
        postgres = stack.enter_context(Postgres())
        receivers = {name: stack.enter_context(SyslogNg(directory / name, "tcp")) for name in dags}
        dags_folder = directory / "dags"
        dags_folder.mkdir()
        slots = pool_slots or sum(int(settings["slots"]) for settings in dags.values())
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url("postgresql+psycopg2"),
            # Airflow's default (32), or more when the slots need it: with fewer task processes than API slots,
            # slots sit queued and the budget goes unused (as docs/deployment.md tells users).
            "AIRFLOW__CORE__PARALLELISM": str(max(32, slots)),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "ATLASSIAN_QRADAR_SETTLE_MINUTES": "0",
            "AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT": json.dumps(
                {"conn_type": "atlassian_admin", "host": sim.base_url, "login": ORG, "password": API_KEY}
            ),
        }
        for name, settings in dags.items():
            (dags_folder / f"{name}.py").write_text(DAG_TEMPLATE.format(name=name, **settings))
            env[f"AIRFLOW_CONN_QRADAR_{name.upper()}"] = json.dumps(
                {"conn_type": "qradar", "host": "127.0.0.1", "port": receivers[name].port, "extra": {"protocol": "tcp"}}
            )
        home = AirflowHome(directory / "airflow-home", extra_env=env, dags_folder=dags_folder)
        home.migrate()
        if pool_slots:
            home.cli("pools", "set", "atlassian_api", str(pool_slots), "Atlassian organization API budget")
        airflow = stack.enter_context(airflow_services(home))
        for name in dags:
            airflow.wait_for_dag(name)
        sim.reset_counters()
        started = time.monotonic()
        for name in dags:
            airflow.api("PATCH", f"/api/v2/dags/{name}", json={"is_paused": False})
        for name, (low, high) in backfills.items():
            airflow.create_backfill(
                name, low.isoformat(), high.isoformat(), max_active_runs=max(16, 2 * slots), reprocess_behavior="none"
            )
        wanted = {name: sum(round((high - low) / timedelta(hours=1)) for low, high in expected[name]) for name in dags}
        deadline = time.monotonic() + 3600
        while True:
            done = {
                name: sum(1 for run in airflow.dag_runs(name) if run["state"] in ("success", "failed")) for name in dags
            }
            if all(done[name] >= wanted[name] for name in dags):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: runs not finished: {done} of {wanted}")
            time.sleep(2)
        wall = time.monotonic() - started
        finished_wall = time.time()
        timeline = _timeline(airflow, list(dags), sim.requests, dags, finished_wall - wall, finished_wall)
        failed = {name: sum(1 for run in airflow.dag_runs(name) if run["state"] == "failed") for name in dags}
        delivery: dict[str, dict[str, int]] = {}
        for name, receiver in receivers.items():
            truth = {i for low, high in expected[name] for i in sim.ground_truth(low, high)}
            receiver.wait_for_lines(len(truth), timeout=60)
            received = _EVENT_ID.findall(receiver.output.read_bytes()) if receiver.output.exists() else []
            ids = {value.decode() for value in received}
            delivery[name] = {
                "expected": len(truth),
                "received": len(received),
                "missing": len(truth - ids),
                "duplicated": len(received) - len(ids),
            }
        stream = [record for record in sim.requests if record.path.endswith("/events-stream")]
    allowed = [record for record in stream if record.status == 200]
    bound = len(allowed) / STREAM_LIMIT_PER_MINUTE * 60.0
    return {
        "windows": wanted,
        "failed_runs": failed,
        "delivery": delivery,
        "exactly_once": all(d["missing"] == 0 and d["duplicated"] == 0 for d in delivery.values()),
        "stream_requests_ok": len(allowed),
        "stream_requests_429": len(stream) - len(allowed),
        "wall_seconds": round(wall, 1),
        "rate_limit_bound_seconds": round(bound, 1),
        "ratio_wall_to_bound": round(wall / bound, 2) if bound else None,
        "timeline": timeline,
    }


def _parse_time(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 2) if ordered else None


def _timeline(
    airflow: Any, names: list[str], requests: list[Any], dags: dict[str, dict[str, Any]], began: float, ended: float
) -> dict[str, Any]:
    """Where the wall time goes: each task's queue wait, start-up + pacing, work after its first request, and how
    long a freed slot stays empty before the next task starts in it (the scheduler's hand-over)."""
    first_request: dict[int, float] = {}
    for record in requests:
        if record.path.endswith("/events-stream") and record.status == 200 and "cursor" not in record.params:
            window = int(record.params["from"][0])
            first_request[window] = min(first_request.get(window, record.at), record.at)
    tasks: list[dict[str, float | None]] = []
    for name in names:
        interval_start = {run["dag_run_id"]: _parse_time(run["data_interval_start"]) for run in airflow.dag_runs(name)}
        offset = 0
        while True:
            body = airflow.api(
                "GET", f"/api/v2/dags/{name}/dagRuns/~/taskInstances", params={"limit": 100, "offset": offset}
            )
            page = body["task_instances"]
            for ti in page:
                window_start = interval_start.get(ti["dag_run_id"])
                request_at = first_request.get(round(window_start * 1000)) if window_start is not None else None
                tasks.append(
                    {
                        "queued": _parse_time(ti.get("queued_when")),
                        "start": _parse_time(ti.get("start_date")),
                        "end": _parse_time(ti.get("end_date")),
                        "request": request_at,
                    }
                )
            offset += len(page)
            if not page or offset >= body["total_entries"]:
                break
    done = [task for task in tasks if task["start"] is not None and task["end"] is not None]
    starts = sorted(float(task["start"]) for task in done)  # type: ignore[arg-type]
    ends = sorted(float(task["end"]) for task in done)  # type: ignore[arg-type]
    # A slot freed at a task's end is taken by the first start after it that no earlier end has taken.
    handovers: list[float] = []
    next_start = 0
    for end in ends:
        while next_start < len(starts) and starts[next_start] < end:
            next_start += 1
        if next_start < len(starts):
            handovers.append(starts[next_start] - end)
            next_start += 1
    slots = sum(int(settings["slots"]) for settings in dags.values())
    busy = sum(float(task["end"]) - float(task["start"]) for task in done)  # type: ignore[arg-type]
    requests_at = [float(task["request"]) for task in done if task["request"] is not None]  # type: ignore[arg-type]
    return {
        "tasks": len(done),
        "slots": slots,
        "slot_seconds_busy_share": round(busy / (slots * (ended - began)), 3) if done else None,
        "seconds_per_task_per_slot": round(slots * (ended - began) / len(done), 2) if done else None,
        "median_queued_to_start_s": _median(
            [float(t["start"]) - float(t["queued"]) for t in done if t["queued"] is not None]  # type: ignore[arg-type]
        ),
        "median_start_to_first_request_s": _median(
            [float(t["request"]) - float(t["start"]) for t in done if t["request"] is not None]  # type: ignore[arg-type]
        ),
        "median_first_request_to_end_s": _median(
            [float(t["end"]) - float(t["request"]) for t in done if t["request"] is not None]  # type: ignore[arg-type]
        ),
        "median_slot_handover_s": _median(handovers),
        "mean_slot_handover_s": round(sum(handovers) / len(handovers), 2) if handovers else None,
        "lead_in_s": round(min(requests_at) - began, 1) if requests_at else None,
        "tail_s": round(ended - max(requests_at), 1) if requests_at else None,
    }


def overlap(catchup_windows: int, backfill_windows: int, events_per_hour: int, slots: int) -> dict[str, Any]:
    """Scenario 1: catchup and a backfill of the same DAG at once."""
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    catchup_start = now_hour - timedelta(hours=catchup_windows)
    backfill_start = catchup_start - timedelta(days=8)
    backfill_end = backfill_start + timedelta(hours=backfill_windows)
    dag = {"start": catchup_start.isoformat(), "catchup": True, "slots": slots, "pool": None}
    result = _scenario(
        "overlap",
        {"overlap_dag": dag},
        {"overlap_dag": (backfill_start, backfill_end - timedelta(hours=1))},
        events_per_hour,
        (backfill_start - timedelta(hours=1), now_hour),
        {"overlap_dag": [(catchup_start, now_hour), (backfill_start, backfill_end)]},
    )
    return {**result, "target": 1.15, "met": _met(result, 1.15)}


def low_volume(windows: int, events_per_hour: int, slots: int) -> dict[str, Any]:
    """Scenario 2: a long backfill of a quiet organization (one request per window)."""
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = now_hour - timedelta(hours=windows + 24)
    dag = {"start": (now_hour + timedelta(days=1)).isoformat(), "catchup": False, "slots": slots, "pool": None}
    result = _scenario(
        "low_volume",
        {"quiet_dag": dag},
        {"quiet_dag": (first, first + timedelta(hours=windows - 1))},
        events_per_hour,
        (first - timedelta(hours=1), first + timedelta(hours=windows)),
        {"quiet_dag": [(first, first + timedelta(hours=windows))]},
    )
    return {**result, "target": 1.2, "met": _met(result, 1.2)}


def two_dags(windows: int, events_per_hour: int, slots: int) -> dict[str, Any]:
    """Scenario 3: two DAGs on the same organization and pool, backfilling at once."""
    now_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = now_hour - timedelta(hours=windows + 24)
    later = now_hour + timedelta(days=1)
    dags = {
        name: {"start": later.isoformat(), "catchup": False, "slots": slots, "pool": "atlassian_api"}
        for name in ("org_dag_a", "org_dag_b")
    }
    span = (first, first + timedelta(hours=windows))
    result = _scenario(
        "two_dags",
        dags,
        {name: (span[0], span[1] - timedelta(hours=1)) for name in dags},
        events_per_hour,
        (first - timedelta(hours=1), span[1]),
        {name: [span] for name in dags},
        pool_slots=slots,
    )
    return {**result, "target": "0 x 429", "met": result["stream_requests_429"] == 0 and result["exactly_once"]}


def _met(result: dict[str, Any], target: float) -> bool:
    ratio = result["ratio_wall_to_bound"]
    return bool(result["exactly_once"] and result["stream_requests_429"] == 0 and ratio is not None and ratio <= target)


def run(
    quick: bool = False, only: tuple[str, ...] = ("overlap", "low_volume", "two_dags"), slots: int = DEFAULT_API_SLOTS
) -> dict[str, Any]:
    """Run the selected scenarios (``quick``: tiny sizes, a smoke run)."""
    results: dict[str, Any] = {"api_slots": slots}
    if "overlap" in only:
        results["overlap"] = overlap(3, 6, 300, slots) if quick else overlap(24, 168, 300, slots)
    if "low_volume" in only:
        results["low_volume"] = low_volume(8, 150, slots) if quick else low_volume(720, 150, slots)
    if "two_dags" in only:
        results["two_dags"] = two_dags(4, 150, slots) if quick else two_dags(48, 150, slots)
    return results


def main() -> None:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="overlap,low_volume,two_dags")
    parser.add_argument("--api-slots", type=int, default=DEFAULT_API_SLOTS)
    parser.add_argument("--low-windows", type=int, default=None, help="override scenario 2's window count")
    args = parser.parse_args()
    only = tuple(part.strip() for part in args.only.split(",") if part.strip())
    if args.low_windows:
        print(json.dumps(low_volume(args.low_windows, 150, args.api_slots), indent=2))
        return
    print(json.dumps(run(args.quick, only, args.api_slots), indent=2))


if __name__ == "__main__":
    main()
