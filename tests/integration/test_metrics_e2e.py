"""The window metrics of a real `airflow dags test` run, sent by Airflow's own StatsD client to a UDP listener.

Airflow is configured the way a user turns StatsD on (``AIRFLOW__METRICS__STATSD_ON`` and friends), with InfluxDB
tags so that the dag_id/conn_id tags are visible on the wire; the listener is a plain UDP socket of this test.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import datetime, timedelta

import pytest

from sandbox.airflow_stack import AirflowHome
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng
from tests.integration.test_dag_e2e import API_KEY, DAG_ID, NOW_HOUR, ORG, connections

pytestmark = pytest.mark.airflow_e2e

# "airflow.atlassian_qradar.events_sent,dag_id=...,conn_id=...:250|c"
STATSD_LINE = re.compile(r"^(?P<name>[^,:]+)(?P<tags>(?:,[^,=:]+=[^,:]+)*):(?P<value>[-0-9.]+)\|(?P<kind>c|g|ms)")


class UdpListener:
    """Collect every StatsD datagram sent to 127.0.0.1:<port> while it runs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.lines.extend(data.decode("utf-8", "replace").splitlines())

    def __enter__(self) -> UdpListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def ours(self) -> dict[str, list[tuple[dict[str, str], float, str]]]:
        """name -> [(tags, value, kind)] for the metrics of this provider."""
        found: dict[str, list[tuple[dict[str, str], float, str]]] = {}
        for line in self.lines:
            match = STATSD_LINE.match(line)
            if not match or ".atlassian_qradar." not in match["name"]:
                continue
            tags = dict(pair.split("=", 1) for pair in match["tags"].split(",")[1:])
            found.setdefault(match["name"], []).append((tags, float(match["value"]), match["kind"]))
        return found


def test_dags_test_run_sends_the_window_metrics_through_airflow_statsd(tmp_path):
    require_syslog_ng()
    window_start = NOW_HOUR - timedelta(hours=30)
    window_end = window_start + timedelta(hours=1)
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=window_start - timedelta(hours=1),
        end=window_end + timedelta(hours=1),
        events_per_hour=180,
        seed=16,
    )
    with SyslogNg(tmp_path, "tcp") as receiver, run_in_thread(config) as sim, UdpListener() as statsd:
        env = connections(sim.base_url, receiver.port)
        env.update(
            {
                "ATLASSIAN_QRADAR_START_DATE": (window_start - timedelta(days=1)).isoformat(),
                "AIRFLOW__METRICS__STATSD_ON": "True",
                "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
                "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
                "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
            }
        )
        # A home of its own: the lag is measured from the organization's newest delivery so far, which the asset
        # state store of a shared home would carry over from other tests' (more recent) windows.
        home = AirflowHome(tmp_path / "airflow-home", extra_env=env)
        home.migrate()
        started = time.time()
        result = home.cli("dags", "test", DAG_ID, window_end.isoformat(), timeout=300)
        finished = time.time()
        assert "failed" not in result.stdout.lower().split("dagrun finished")[-1], result.stdout[-3000:]
        truth = sim.events_between(window_start, window_end)
        received = receiver.wait_for_lines(len(truth))
        time.sleep(0.5)  # the last datagrams of the run
    assert len(received) == len(truth) > 100
    assert {parse_leef(line[line.index("LEEF:") :])[1]["eventId"] for line in received} == {e["id"] for e in truth}

    metrics = statsd.ours()
    tags = {"dag_id": DAG_ID, "conn_id": "atlassian_admin_default"}

    def only(name: str, kind: str) -> float:
        values = metrics.get(f"airflow.atlassian_qradar.{name}", [])
        assert len(values) == 1, f"{name}: expected one value, got {values} (all: {sorted(metrics)})"
        got_tags, value, got_kind = values[0]
        assert got_tags == tags and got_kind == kind
        return value

    assert only("events_fetched", "c") == len(truth)
    assert only("events_sent", "c") == len(truth)
    assert only("duplicates_skipped", "c") == 0
    assert only("events_truncated", "c") == 0
    assert only("late_events_delivered", "c") == 0  # the window 24 h earlier was never read: nothing to reconcile
    assert only("api_requests", "c") >= 2  # /event-actions and at least one page
    assert only("rate_limit_waits", "c") == 0
    assert 0 < only("window_duration", "ms") < 300_000
    newest_processed = max(
        datetime.fromisoformat(event["attributes"]["processedAt"].replace("Z", "+00:00")) for event in truth
    )
    lag = only("lag_seconds", "g")
    # newest processedAt + lag = the moment the task measured it, which lies inside the CLI run.
    assert started - 1 <= newest_processed.timestamp() + lag <= finished + 1
