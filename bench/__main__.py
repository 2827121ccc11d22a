"""
``python -m bench`` (``make bench``): run every benchmark, then write BENCHMARKS.md and BENCHMARKS.json.

``--quick`` uses tiny sizes (a smoke run: minutes, not the ~25 of a full run); ``--only encoder,pipeline`` runs
a subset; ``--output DIR`` writes the report elsewhere (the smoke test uses a temporary directory). A measure
that fails is recorded with its error and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def _encoder(quick: bool) -> dict[str, Any]:
    from bench import encoder

    return encoder.run(2_000 if quick else 50_000)


def _sender(quick: bool) -> dict[str, Any]:
    from bench import sender

    return sender.run(5_000 if quick else 200_000, 400)


def _pipeline(quick: bool) -> dict[str, Any]:
    from bench import pipeline

    if quick:
        return pipeline.run((1_000, 3_000), repeats=1, profile_size=1_000)
    return pipeline.run(pipeline.SIZES, repeats=3, profile_size=10_000)


def _api_efficiency(quick: bool) -> dict[str, Any]:
    from bench import api_efficiency

    return api_efficiency.run((0, 100, 1_000), 500) if quick else api_efficiency.run()


def _backfill(quick: bool) -> dict[str, Any]:
    from bench import backfill

    return backfill.run(windows=3, events_per_hour=100) if quick else backfill.run()


def _reconcile(quick: bool) -> dict[str, Any]:
    from bench import reconcile

    return reconcile.run((100, 1_000)) if quick else reconcile.run()


def _budget(quick: bool) -> dict[str, Any]:
    from bench import budget

    return budget.run(quick)


#: Measures in report order: name -> runner(quick).
MEASURES: dict[str, Callable[[bool], dict[str, Any]]] = {
    "encoder": _encoder,
    "sender": _sender,
    "pipeline": _pipeline,
    "api_efficiency": _api_efficiency,
    "backfill": _backfill,
    "reconcile": _reconcile,
    "budget": _budget,
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import subprocess

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    try:
        syslog_ng = subprocess.run(["syslog-ng", "--version"], capture_output=True, text=True, timeout=10)
        syslog_ng_version = syslog_ng.stdout.splitlines()[0] if syslog_ng.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        syslog_ng_version = "not installed"
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "airflow": version("apache-airflow"),
        "requests": version("requests"),
        "syslog_ng": syslog_ng_version,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected measures and write the report; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(MEASURES)}")
    parser.add_argument("--output", type=Path, default=REPO_ROOT, help="directory for BENCHMARKS.md/.json")
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(MEASURES)
    unknown = sorted(set(selected) - set(MEASURES))
    if unknown:
        parser.error(f"unknown measure(s) {unknown}; choose from {list(MEASURES)}")
    # Hooks built in this process read connections from the environment; keep Airflow out of ~/airflow.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-home-"))
    from bench import report

    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "measures": {},
    }
    failed = False
    for name in selected:
        print(f"== {name}", flush=True)
        measure_started = time.monotonic()
        try:
            results["measures"][name] = MEASURES[name](args.quick)
        except Exception as err:
            failed = True
            traceback.print_exc()
            results["measures"][name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
        results["measures"][name]["bench_seconds"] = round(time.monotonic() - measure_started, 1)
    results["total_seconds"] = round(time.monotonic() - started, 1)
    paths = report.write(results, args.output)
    print("wrote " + ", ".join(str(path) for path in paths), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
