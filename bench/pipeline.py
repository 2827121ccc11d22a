"""
One window through the whole pipeline (hook -> LEEF encoder -> TCP sender -> syslog-ng), next to fetch-and-parse alone.

Three kinds of process, so each figure belongs to the right one:

- a **page server**: the Atlassian simulator holding one hour of ``size`` events, with every page of that window
  rendered before any timing (``SimulatorConfig(prebuilt_pages=True)``), so it answers a page with one dict
  lookup and is not the bottleneck. At 1M events it holds ~1.3 GB of page bodies: its RSS is not ours.
- a **fetch child**: ``AtlassianAuditLogHook.iter_pages`` over the window (HTTP + ``json`` + dedupe), nothing else.
- a **pipeline child**: ``AtlassianAuditLogToQRadarOperator.execute`` over the same window into a real syslog-ng,
  timed until syslog-ng has written the last event to its file.

Fetch and pipeline children alternate against the same page server and receiver, so a noisy neighbour slows
both. Each child reports its own peak RSS (``VmHWM``). Targets: pipeline time <= 1.5x fetch time;
peak RSS at the largest size <= peak RSS at the smallest + 50 MB.

Run: ``python -m bench.pipeline [--sizes 10000,100000] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ORG, API_KEY = "bench-org", "bench-key-never-logged"
PAGE_SIZE = 200  # the connection default: what a deployment gets without tuning
SIZES = (10_000, 100_000, 1_000_000)
RSS_TARGET_MB = 50.0
RATIO_TARGET = 1.5
MODES = ("fetch", "pipeline")


def bench_hour() -> datetime:
    """A whole hour two days back: inside retention, and every event already 'processed' (visible)."""
    return (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def atlassian_connection(base_url: str, page_size: int = PAGE_SIZE, stream_rpm: float = 0) -> str:
    """``AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT`` for the simulator (JSON form)."""
    extra = {"page_size": page_size, "stream_requests_per_minute": stream_rpm}
    return json.dumps(
        {"conn_type": "atlassian_admin", "host": base_url, "login": ORG, "password": API_KEY, "extra": extra}
    )


def qradar_connection(port: int) -> str:
    """``AIRFLOW_CONN_QRADAR_DEFAULT`` for a loopback syslog-ng over TCP (the connection's other defaults)."""
    return json.dumps({"conn_type": "qradar", "host": "127.0.0.1", "port": port, "extra": {"protocol": "tcp"}})


def child_env(**connections: str) -> dict[str, str]:
    """Environment of a measured child: our connections, a throw-away AIRFLOW_HOME, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(connections)
    env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))
    return env


def last_json_line(text: str) -> dict[str, Any]:
    """The last line of a child's stdout that is a JSON object (libraries may print before it)."""
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise RuntimeError(f"no JSON result in child output:\n{text[-2000:]}")


# --- page server ---------------------------------------------------------------------------------------------


def _serve(events: int, page_size: int, hour: datetime, stream_rpm: int) -> None:
    """Child: serve one hour of ``events`` events with pre-rendered pages until stdin closes."""
    from sandbox.atlassian_sim import SimulatorConfig, run_in_thread

    started = time.perf_counter()
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=hour,
        end=hour + timedelta(hours=1),
        events_per_hour=events,
        stream_requests_per_minute=stream_rpm,
        events_requests_per_minute=0,
        prebuilt_pages=True,
    )
    with run_in_thread(config) as sim:
        indexed = time.perf_counter()
        pages, rendered = sim.prebuild_stream(hour, hour + timedelta(hours=1), page_size)
        ready = {
            "base_url": sim.base_url,
            "events": rendered,
            "pages": pages,
            "index_seconds": round(indexed - started, 1),
            "prebuild_seconds": round(time.perf_counter() - indexed, 1),
        }
        print(json.dumps(ready), flush=True)
        sys.stdin.read()  # the parent closes our stdin when it is done


@contextmanager
def page_server(
    events: int, page_size: int = PAGE_SIZE, hour: datetime | None = None, stream_rpm: int = 0
) -> Iterator[dict[str, Any]]:
    """Run :func:`_serve` in a child process; yield its ready line (``base_url``, ``events``, ...)."""
    hour = hour or bench_hour()
    args = [sys.executable, "-m", "bench.pipeline", "--serve", str(events), str(page_size), hour.isoformat()]
    process = subprocess.Popen(
        [*args, str(stream_rpm)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env()
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"page server for {events} events exited with {process.wait()}")
        yield json.loads(line)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- measured children ---------------------------------------------------------------------------------------


class _NewLines:
    """Count the lines appended to a file after construction, reading only the new bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.count = 0

    def poll(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            while chunk := handle.read(1 << 20):
                self.count += chunk.count(b"\n")
                self.offset += len(chunk)
        return self.count


def _fetch(start: datetime, end: datetime) -> dict[str, Any]:
    from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook

    hook = AtlassianAuditLogHook()
    started = time.perf_counter()
    events = sum(len(page.events) for page in hook.iter_pages(start, end))
    return {"seconds": time.perf_counter() - started, "events": events, "requests": hook.stats.requests}


def _pipeline(start: datetime, end: datetime, received_file: Path, expected: int) -> dict[str, Any]:
    from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator

    operator = AtlassianAuditLogToQRadarOperator(
        task_id="bench", window_start=start.isoformat(), window_end=end.isoformat(), deferrable=False
    )
    received = _NewLines(received_file)
    started = time.perf_counter()
    summary = operator.execute({})  # type: ignore[arg-type]
    handed_over = time.perf_counter()
    deadline = handed_over + 120
    while received.poll() < expected:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"syslog-ng wrote {received.count} of {expected} lines within 120 s")
        time.sleep(0.005)
    finished = time.perf_counter()
    return {
        "seconds": finished - started,
        "send_returned_seconds": handed_over - started,
        "events": summary["sent"],
        "requests": summary["api_requests"],
        "received": received.count,
    }


def peak_rss_kb() -> int:
    """This process's peak RSS in KiB: ``VmHWM`` from /proc (``ru_maxrss`` is not used: Linux carries the
    parent's high-water mark over fork+exec, so a child of a 1 GB parent would report >= 1 GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # not Linux: the best we have


def _child(mode: str, start: str, end: str, received_file: str, expected: int, profile_to: str) -> None:
    """Child: run one measured mode and print its figures and peak RSS as one JSON line."""
    # Import what both modes need before the baseline, so the baseline is "Airflow + provider loaded".
    import airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar  # noqa: F401

    import_rss_kb = peak_rss_kb()
    window_start, window_end = datetime.fromisoformat(start), datetime.fromisoformat(end)
    profiler = cProfile.Profile() if profile_to else None
    if profiler:
        profiler.enable()
    if mode == "fetch":
        row = _fetch(window_start, window_end)
    else:
        row = _pipeline(window_start, window_end, Path(received_file), expected)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_to)
    row.update(mode=mode, peak_rss_kb=peak_rss_kb(), import_rss_kb=import_rss_kb)
    print(json.dumps(row), flush=True)


def measure_child(
    mode: str, base_url: str, receiver: Any, hour: datetime, expected: int, profile_to: str = ""
) -> dict[str, Any]:
    """Run one fetch or pipeline child against a page server and receiver; return its JSON row."""
    env = child_env(
        AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT=atlassian_connection(base_url),
        AIRFLOW_CONN_QRADAR_DEFAULT=qradar_connection(receiver.port),
    )
    end = hour + timedelta(hours=1)
    args = [sys.executable, "-m", "bench.pipeline", "--child", mode, hour.isoformat(), end.isoformat()]
    args += [str(receiver.output), str(expected), profile_to]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    row = last_json_line(done.stdout)
    if row["events"] != expected:
        raise AssertionError(f"{mode} child handled {row['events']} events, expected {expected}")
    return row


def top_functions(profile_path: str, limit: int = 8) -> list[dict[str, Any]]:
    """The ``limit`` functions with the most own time in a cProfile dump, as JSON-ready rows."""
    stats = pstats.Stats(profile_path, stream=io.StringIO())
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short_path(filename)}:{line}({name})",
                "calls": calls,
                "own_seconds": round(own, 3),
                "own_share": round(own / total, 3) if total else 0.0,
                "cumulative_seconds": round(cumulative, 3),
            }
        )
    rows.sort(key=lambda row: row["own_seconds"], reverse=True)
    return rows[:limit]


#: Hot paths reported by cumulative time: label -> (file name ending, function name).
HOT_PATHS = {
    "hook: iter_pages (HTTP, JSON, dedupe, clock evidence)": ("atlassian_api/paging.py", "walk_window"),
    "hook: HTTP GET (requests)": ("requests/sessions.py", "get"),
    "hook: json parse of pages": ("json/decoder.py", "raw_decode"),
    "hook: _accept per event (timestamps, dedupe)": ("atlassian_api/paging.py", "_accept"),
    "encoder: LeefOptions.encode": ("leef/options.py", "encode"),
    "sender: send (framing + sendall)": ("qradar_transport/tcp.py", "send"),
    "sender: confirm (receipt per page)": ("qradar_transport/tcp.py", "confirm"),
}


def profile_summary(profile_path: str) -> dict[str, Any]:
    """Total profiled seconds, the share of each :data:`HOT_PATHS` entry, and the top own-time functions."""
    stats = pstats.Stats(profile_path, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    total = max((row[3] for row in stats.values()), default=0.0)  # the outermost call's cumulative time
    shares: dict[str, float] = {}
    for label, (file_end, name) in HOT_PATHS.items():
        cumulative = max(
            (row[3] for (filename, _, func), row in stats.items() if filename.endswith(file_end) and func == name),
            default=0.0,
        )
        shares[label] = round(cumulative / total, 3) if total else 0.0
    top = top_functions(profile_path)
    return {"profiled_seconds": round(total, 2), "cumulative_share": shares, "top_own_time": top}


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "airflow_provider_atlassian_qradar/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return Path(filename).name


# --- the benchmark -------------------------------------------------------------------------------------------


def run(sizes: tuple[int, ...] = SIZES, repeats: int = 3, profile_size: int | None = None) -> dict[str, Any]:
    """
    Measure fetch-only and full-pipeline runs of one window per size, alternating, best of ``repeats``.

    The largest size above 100k events runs once per mode (each run is long enough to average out noise).

    :param sizes: window sizes in events.
    :param repeats: runs per mode and size (fetch and pipeline alternate).
    :param profile_size: also profile one pipeline run (cProfile) at this size.
    :return: per size: fetch and pipeline events/s, their time ratio, peak RSS; the RSS growth and profile.
    """
    from sandbox.receivers import SyslogNg

    hour = bench_hour()
    result: dict[str, Any] = {"page_size": PAGE_SIZE, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch, SyslogNg(Path(scratch), "tcp") as receiver:
        for size in sizes:
            with page_server(size, hour=hour) as server:
                if server["events"] != size:
                    raise AssertionError(f"page server holds {server['events']} events, expected {size}")
                runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
                for _ in range(repeats if size <= 100_000 else 1):
                    for mode in MODES:
                        runs[mode].append(measure_child(mode, server["base_url"], receiver, hour, size))
                        print(f"  pipeline bench: {size} events {mode}: {runs[mode][-1]['seconds']:.2f} s", flush=True)
                if profile_size == size:
                    result["profile"] = {"events": size}
                    path = str(Path(scratch) / "pipeline.prof")
                    measure_child("pipeline", server["base_url"], receiver, hour, size, profile_to=path)
                    result["profile"]["pipeline"] = profile_summary(path)
            fetch = min(runs["fetch"], key=lambda row: row["seconds"])
            pipeline = min(runs["pipeline"], key=lambda row: row["seconds"])
            result["sizes"][str(size)] = {
                "runs_per_mode": len(runs["fetch"]),
                "page_server": server,
                "fetch_events_per_s": round(size / fetch["seconds"]),
                "pipeline_events_per_s": round(size / pipeline["seconds"]),
                "ratio_pipeline_to_fetch": round(pipeline["seconds"] / fetch["seconds"], 2),
                "pipeline_send_returned_seconds": round(pipeline["send_returned_seconds"], 2),
                "requests": pipeline["requests"],
                "fetch_requests": fetch["requests"],
                "pipeline_peak_rss_mb": round(max(r["peak_rss_kb"] for r in runs["pipeline"]) / 1024, 1),
                "fetch_peak_rss_mb": round(max(r["peak_rss_kb"] for r in runs["fetch"]) / 1024, 1),
                "import_rss_mb": round(pipeline["import_rss_kb"] / 1024, 1),
            }
    small, large = result["sizes"][str(min(sizes))], result["sizes"][str(max(sizes))]
    result["rss_growth_mb"] = round(large["pipeline_peak_rss_mb"] - small["pipeline_peak_rss_mb"], 1)
    result["rss_target_mb"] = RSS_TARGET_MB
    result["ratio_target"] = RATIO_TARGET
    result["worst_ratio"] = max(row["ratio_pipeline_to_fetch"] for row in result["sizes"].values())
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module docstring); ``--serve`` and ``--child`` are internal."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=int, default=None, help="also cProfile one pipeline run of this size")
    args = parser.parse_args(argv)
    if args.serve:
        events, page_size, hour, rpm = args.serve
        _serve(int(events), int(page_size), datetime.fromisoformat(hour), int(rpm))
        return
    if args.child:
        mode, start, end, received_file, expected, profile_to = args.child
        _child(mode, start, end, received_file, int(expected), profile_to)
        return
    sizes = tuple(int(size) for size in args.sizes.split(","))
    print(json.dumps(run(sizes, args.repeats, args.profile), indent=2))


if __name__ == "__main__":
    main()
