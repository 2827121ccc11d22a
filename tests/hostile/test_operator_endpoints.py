"""The operator against a hostile or broken QRadar side and against concurrent runs: nothing lost, clear errors.

Real loopback servers of the sandbox (:mod:`sandbox.faults.hostile_servers`) and the Atlassian simulator;
``execute`` is called the way Airflow calls it, with a dict-backed task state store, and a failed attempt is retried
the way Airflow retries a task (``execute`` again with the same store).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_atlassian_qradar.qradar_transport import QRadarDeliveryError
from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from airflow_provider_atlassian_qradar.transfers.checkpoint import CHECKPOINT_KEY
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.faults.hostile_servers import StallingReceiver
from sandbox.leef_parser import parse_leef
from sandbox.state_store import DictStore

API_KEY = "hostile-operator-key-NEVER-LOGGED"
ORG = "org-hostile-op"
HOUR = (datetime.now(timezone.utc) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
EVENTS = 1000
PAGE = 200


def event_ids(lines: list[str]) -> Counter[str]:
    ids: Counter[str] = Counter()
    for line in lines:
        _header, attributes = parse_leef(line[line.index("LEEF:") :])
        ids[attributes["eventId"]] += 1
    return ids


@pytest.fixture
def simulator(monkeypatch):
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=HOUR - timedelta(hours=1),
        end=HOUR + timedelta(hours=2),
        events_per_hour=EVENTS,
        seed=13,
        hostile_ratio=0.02,
        stream_requests_per_minute=0,
    )
    with run_in_thread(config) as sim:
        conn = atlassian_connection(sim.base_url, ORG, API_KEY, stream_requests_per_minute=0, page_size=PAGE)
        monkeypatch.setenv(ATLASSIAN_CONN_VAR, conn)
        yield sim


def operator(**kwargs: Any) -> AtlassianAuditLogToQRadarOperator:
    kwargs.setdefault("window_start", HOUR.isoformat())
    kwargs.setdefault("window_end", (HOUR + timedelta(hours=1)).isoformat())
    kwargs.setdefault("task_id", "deliver")
    return AtlassianAuditLogToQRadarOperator(**kwargs)


class TestStalledReceiver:
    def test_a_receiver_that_stops_reading_loses_nothing_across_a_retry(self, simulator, monkeypatch):
        receiver = StallingReceiver()
        conn = qradar_connection(receiver.port, batch_size=PAGE, write_timeout=1, max_reconnects=1)
        monkeypatch.setenv(QRADAR_CONN_VAR, conn)
        store = DictStore()
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert len(truth) == EVENTS
        try:
            # Attempt 1: the receiver accepts every connection but reads nothing.
            with pytest.raises(QRadarDeliveryError) as error:
                operator().execute({"task_state_store": store})
            assert CHECKPOINT_KEY not in store.values, "no receipt, so the checkpoint must not move past anything"
            # The receiver is restarted: what it held unread is gone (reset), and it reads from now on.
            receiver.heal()
            summary = operator().execute({"task_state_store": store})
            got = event_ids(receiver.lines())
        finally:
            receiver.close()
        message = str(error.value)
        assert "connect timeout" not in message
        assert "gave no receipt" in message or "accepted the connection but did not read" in message, message
        assert not error.value.permanent
        assert receiver.stalled_connections >= 1
        assert set(got) == set(truth), f"{len(set(truth) - set(got))} of {EVENTS} events lost"
        duplicates = sum(got.values()) - len(got)
        print(f"stalled receiver: {len(got)} of {EVENTS} arrived, {duplicates} duplicates; attempt 1: {message}")
        assert duplicates <= PAGE
        assert summary["sent"] == EVENTS


class TestConcurrentRuns:
    def test_a_second_run_of_the_same_window_is_refused_while_the_first_delivers(self, simulator, monkeypatch):
        receiver = StallingReceiver()
        receiver.heal()  # a well-behaved receiver
        monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(receiver.port))
        simulator.faults.update(slow_seconds=0.5)  # the first run takes a few seconds
        first_done = threading.Event()
        outcome: dict[str, Any] = {}

        def first() -> None:
            try:
                outcome["summary"] = operator().execute({"task_state_store": DictStore()})
            except BaseException as caught:  # reported by the assertions below
                outcome["error"] = caught
            finally:
                first_done.set()

        runner = threading.Thread(target=first)
        try:
            runner.start()
            while not simulator.requests and not first_done.is_set():
                first_done.wait(0.05)
            with pytest.raises(AirflowFailException) as error:
                operator().execute({"task_state_store": DictStore()})
            runner.join(120)
            simulator.faults.update(slow_seconds=0)
            # Once the first run is done, the window can be delivered again on purpose (a clear/rerun).
            operator().execute({"task_state_store": DictStore()})
            got = event_ids(receiver.lines())
        finally:
            receiver.close()
        assert "summary" in outcome, outcome.get("error")
        assert "another run is delivering window" in str(error.value)
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert set(got) == set(truth) and max(got.values()) == 2, "two complete deliveries, none concurrent"

    def test_other_windows_run_side_by_side(self, simulator, monkeypatch):
        receiver = StallingReceiver()
        receiver.heal()
        monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(receiver.port))
        earlier = HOUR - timedelta(hours=1)
        results: list[Any] = []
        errors: list[BaseException] = []

        def run(task: AtlassianAuditLogToQRadarOperator) -> None:
            try:
                results.append(task.execute({"task_state_store": DictStore()}))
            except BaseException as caught:  # reported by the assertion below
                errors.append(caught)

        tasks = [
            operator(),
            operator(task_id="other", window_start=earlier.isoformat(), window_end=HOUR.isoformat()),
        ]
        threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        finally:
            receiver.close()
        assert errors == []
        assert len(results) == 2


class TestPermanence:
    def test_a_window_over_max_window_fails_at_once(self, simulator, monkeypatch):
        monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(9))
        too_long = operator(window_start=(HOUR - timedelta(days=2)).isoformat(), window_end=HOUR.isoformat())
        with pytest.raises(AirflowFailException, match="longer than max_window"):
            too_long.execute({"task_state_store": DictStore()})
        assert simulator.requests == [], "refused before any request"
