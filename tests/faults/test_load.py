"""Load: a 1M-event window and a 30-day backfill (720 hourly windows) on the simulator, into syslog-ng.

The operator runs in a child process (as in a worker) whose RSS is sampled twice a second: after warm-up it must
stay flat. Summary counts must equal the simulator's ground truth, and so must what syslog-ng received. Under
the ``load`` marker: deselected unless ``RUN_LOAD=1`` (or ``-m load``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.faults.environment import ORG
from sandbox.receivers import SyslogNg, require_syslog_ng
from sandbox.state_store import DictStore

pytestmark = [pytest.mark.faults, pytest.mark.load]

API_KEY = "load-test-key"
#: RSS may grow this much after warm-up (allocator noise); a per-event or per-window leak grows far more.
ALLOWED_GROWTH_BYTES = 64 * 1024 * 1024


def deliver_windows(connections: dict[str, str], windows: list[tuple[str, str]], result_path: str) -> None:
    """Child process: deliver each window in turn, like a long-lived worker; write the summaries as JSON."""
    os.environ.update(connections)
    from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator

    summaries = []
    for start, end in windows:
        operator = AtlassianAuditLogToQRadarOperator(task_id="deliver", window_start=start, window_end=end)
        summaries.append(operator.execute({"task_state_store": DictStore()}))
    Path(result_path).write_text(json.dumps(summaries))


def run_sampled(
    connections: dict[str, str], windows: list[tuple[str, str]], workdir: Path, timeout: float
) -> tuple[list[dict[str, Any]], list[tuple[float, int]]]:
    """Run :func:`deliver_windows` in a spawned process, sampling its RSS; return (summaries, samples)."""
    result = workdir / "summaries.json"
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=deliver_windows, args=(connections, windows, str(result)))
    child.start()
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    watched = psutil.Process(child.pid)
    try:
        while child.is_alive() and time.monotonic() - started < timeout:
            try:
                samples.append((time.monotonic() - started, watched.memory_info().rss))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.5)
    finally:
        if child.is_alive():
            child.kill()
        child.join(30)
    assert child.exitcode == 0, f"the delivering process exited {child.exitcode}"
    return json.loads(result.read_text()), samples


def growth_after_warmup(samples: list[tuple[float, int]]) -> tuple[int, int, int]:
    """(RSS at the end of warm-up, the highest RSS after it, growth): warm-up is the first 20% of the run."""
    assert len(samples) >= 10, f"too few RSS samples ({len(samples)}) to judge memory growth"
    total = samples[-1][0]
    warm = [rss for at, rss in samples if 0.1 * total <= at <= 0.2 * total] or [samples[len(samples) // 5][1]]
    baseline = max(warm)
    peak = max(rss for at, rss in samples if at > 0.2 * total)
    return baseline, peak, peak - baseline


def received_event_ids(syslog: SyslogNg, expected: int, timeout: float) -> tuple[int, set[str]]:
    """(frames received, distinct eventIds), reading syslog-ng's output in a streaming way."""
    syslog.wait_for_lines(expected, timeout=timeout, settle=2.0)
    frames, ids = 0, set()
    with syslog.output.open("rb") as handle:
        for raw in handle:
            frames += 1
            at = raw.find(b"\teventId=")
            ids.add(raw[at + 9 : raw.index(b"\t", at + 9)].decode() if at >= 0 else "")
    return frames, ids


def connections(sim_url: str, port: int) -> dict[str, str]:
    return {
        ATLASSIAN_CONN_VAR: atlassian_connection(sim_url, ORG, API_KEY, stream_requests_per_minute=0, page_size=1000),
        QRADAR_CONN_VAR: qradar_connection(port, batch_size=500),
    }


def _report(label: str, samples: list[tuple[float, int]], extra: str, note: Callable[[str], None] = print) -> None:
    baseline, peak, growth = growth_after_warmup(samples)
    note(
        f"{label}: {extra}; {samples[-1][0]:.0f} s; RSS after warm-up {baseline / 2**20:.0f} MiB, peak later "
        f"{peak / 2**20:.0f} MiB (growth {growth / 2**20:+.1f} MiB), {len(samples)} samples"
    )


class TestLoad:
    def test_one_million_event_window(self, tmp_path):
        require_syslog_ng()
        hour = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=hour,
            end=hour + timedelta(hours=1),
            events_per_hour=1_000_000,
            seed=21,
            hostile_ratio=0.01,
            stream_requests_per_minute=0,
        )
        with run_in_thread(config) as sim, SyslogNg(tmp_path, "tcp") as syslog:
            truth = sim.ground_truth(hour, hour + timedelta(hours=1))
            window = [(hour.isoformat(), (hour + timedelta(hours=1)).isoformat())]
            summaries, samples = run_sampled(connections(sim.base_url, syslog.port), window, tmp_path, timeout=3600)
            frames, ids = received_event_ids(syslog, len(truth), timeout=600)
        summary = summaries[0]
        _report("1M-event window", samples, f"fetched {summary['fetched']}, sent {summary['sent']}, {frames} frames")
        assert len(truth) == 1_000_000
        assert summary["fetched"] == summary["sent"] == len(truth)
        assert frames == len(truth) and ids == set(truth)
        _baseline, _peak, growth = growth_after_warmup(samples)
        assert growth < ALLOWED_GROWTH_BYTES

    def test_thirty_day_backfill(self, tmp_path):
        require_syslog_ng()
        end = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=30)
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=start,
            end=end,
            events_per_hour=300,
            seed=22,
            hostile_ratio=0.01,
            stream_requests_per_minute=0,
        )
        windows = [
            ((start + timedelta(hours=h)).isoformat(), (start + timedelta(hours=h + 1)).isoformat())
            for h in range(30 * 24)
        ]
        with run_in_thread(config) as sim, SyslogNg(tmp_path, "tcp") as syslog:
            truth = sim.ground_truth(start, end)
            per_window = [
                len(sim.ground_truth(datetime.fromisoformat(a), datetime.fromisoformat(b))) for a, b in windows
            ]
            summaries, samples = run_sampled(connections(sim.base_url, syslog.port), windows, tmp_path, timeout=3600)
            frames, ids = received_event_ids(syslog, len(truth), timeout=600)
        sent = sum(summary["sent"] for summary in summaries)
        _report("30-day backfill", samples, f"{len(summaries)} windows, sent {sent} of {len(truth)}, {frames} frames")
        assert len(summaries) == 720
        assert [summary["sent"] for summary in summaries] == per_window
        assert sent == len(truth) == 720 * 300
        assert frames == len(truth) and ids == set(truth)
        _baseline, _peak, growth = growth_after_warmup(samples)
        assert growth < ALLOWED_GROWTH_BYTES
