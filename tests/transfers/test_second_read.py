"""Late events: a window's events that become visible after its first read, sent by a later window's task."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from airflow_provider_atlassian_qradar.transfers.checkpoint import CHECKPOINT_KEY
from airflow_provider_atlassian_qradar.windows import Window
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from tests.transfers.test_atlassian_to_qradar import (
    API_KEY,
    ORG,
    DictStore,
    operator,
    received_ids,
    use_simulator,
)


class DictAssetStores:
    """``context["asset_state_store"]``: one DictStore per asset, subscripted by the asset."""

    def __init__(self) -> None:
        self.by_name: dict[str, DictStore] = {}

    def __getitem__(self, asset: Any) -> DictStore:
        return self.by_name.setdefault(asset.name, DictStore())

    def memories(self) -> dict[str, Any]:
        """The first-read memories (the silent-source alarm's record shares the store under its own key)."""
        return {
            key: value
            for store in self.by_name.values()
            for key, value in store.values.items()
            if key.startswith("first_read/")
        }


class TestReconciliation:
    """A window's events that become visible after its first read are sent by the task of a later window."""

    @pytest.fixture
    def minute_windows(self, monkeypatch, filter_clock):
        now = datetime.now(timezone.utc).replace(microsecond=0)
        # The later window ends 30 s ago: every event of it (lag <= 20 s) is visible to its first read, so the
        # truth checked at the end is what that read could see; only the first window has hidden events.
        first = (now - timedelta(seconds=150), now - timedelta(seconds=90))
        later = (now - timedelta(seconds=90), now - timedelta(seconds=30))
        # Three events of the first window are processed (and so visible) only 3 s from now: its first read
        # cannot see them. Under the processed clock they belong to the window of their processing time instead.
        hidden_at = now + timedelta(seconds=3)
        late = tuple(
            {
                "id": f"late-{number}",
                "type": "events",
                "attributes": {
                    "time": (first[0] + timedelta(seconds=10 * number + 5)).isoformat().replace("+00:00", "Z"),
                    "processedAt": hidden_at.isoformat().replace("+00:00", "Z"),
                    "action": "user_login",
                    "actor": {"id": "u1"},
                    "context": [],
                },
            }
            for number in range(3)
        )
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=now - timedelta(minutes=10),
            end=now,
            events_per_hour=3600,
            seed=9,
            processing_lag_max_seconds=20,
            stream_requests_per_minute=0,
            filter_clock=filter_clock,
            extra_events=late,
        )
        with run_in_thread(config) as sim:
            use_simulator(monkeypatch, sim)
            yield sim, first, later, hidden_at

    @staticmethod
    def run(window: tuple[datetime, datetime], stores: DictAssetStores, **kwargs: Any) -> dict[str, Any]:
        # 60 s: the first window's read (90 s after its end) is still within reconcile_after + gap of it.
        kwargs.setdefault("visibility_gap", timedelta(seconds=60))
        task = operator(
            window_start=window[0].isoformat(),
            window_end=window[1].isoformat(),
            settle=timedelta(0),
            reconcile_after=timedelta(minutes=1),
            **kwargs,
        )
        return task.execute({"task_state_store": DictStore(), "asset_state_store": stores})

    def test_late_events_are_sent_once_by_the_later_window(self, minute_windows, syslog_ng, filter_clock):
        sim, first, later, hidden_at = minute_windows
        stores = DictAssetStores()
        first_summary = self.run(first, stores)
        assert first_summary["filter_clock"] == filter_clock
        seen_first = set(received_ids(syslog_ng.wait_for_lines(first_summary["sent"])))
        assert not {"late-0", "late-1", "late-2"} & seen_first, "the late events were visible to the first read"
        while datetime.now(timezone.utc) <= hidden_at + timedelta(seconds=1):
            time.sleep(0.2)
        summary = self.run(later, stores)
        reconcile = summary["reconcile"]
        assert reconcile["window_start"] == first[0].isoformat()
        truth = set(sim.ground_truth(*first)) | set(sim.ground_truth(*later))
        got = received_ids(syslog_ng.wait_for_lines(len(truth)))
        assert set(got) == truth and max(got.values()) == 1, "missing or duplicated after reconciliation"
        if filter_clock == "time":
            assert reconcile["late_delivered"] == 3
            assert reconcile["api_requests"] == 1, "newest-first walk stops at the first page"
        else:
            # Processed-clock windows hold only events processed before their end: nothing to re-read.
            assert reconcile == {**reconcile, "late_delivered": 0, "api_requests": 0}
        reader = operator().dag_id + ".deliver"
        assert stores.memories().keys() == {f"first_read/{reader}/{Window(*later).label()}"}, (
            "reconciled memory deleted"
        )

    def test_two_tasks_reading_one_organization_keep_their_own_memories(self, minute_windows, syslog_ng):
        _sim, first, later, _ = minute_windows
        stores = DictAssetStores()
        self.run(first, stores, visibility_gap=timedelta(minutes=10))
        other = AtlassianAuditLogToQRadarOperator(
            task_id="to_second_qradar",
            window_start=first[0].isoformat(),
            window_end=first[1].isoformat(),
            settle=timedelta(0),
            reconcile_after=timedelta(minutes=1),
            visibility_gap=timedelta(minutes=10),
        )
        other.execute({"task_state_store": DictStore(), "asset_state_store": stores})
        label = Window(*first).label()
        readers = {key for key in stores.memories() if key.endswith(label)}
        assert len(readers) == 2, readers
        self.run(later, stores, visibility_gap=timedelta(minutes=10))  # "deliver" reconciles its own first read
        left = {key for key in stores.memories() if key.endswith(label)}
        assert left == {f"first_read/{other.dag_id}.to_second_qradar/{label}"}

    def test_a_window_first_read_after_it_settled_costs_no_reconciliation(self, minute_windows, syslog_ng):
        sim, first, _later, _ = minute_windows
        stores = DictAssetStores()
        old = (first[0] - timedelta(minutes=5), first[1] - timedelta(minutes=5))
        self.run(old, stores)
        assert stores.memories() == {}, "a window read long after its end needs no second read"
        requests_before = len(sim.requests)
        summary = self.run((old[0] + timedelta(minutes=1), old[1] + timedelta(minutes=1)), stores)
        assert summary["reconcile"]["api_requests"] == 0
        assert summary["reconcile"]["note"] == "nothing to reconcile"
        assert len(sim.requests) - requests_before == summary["api_requests"]

    def test_a_retry_after_a_failed_reconciliation_sends_neither_window_twice(
        self, minute_windows, syslog_ng, filter_clock
    ):
        sim, first, later, hidden_at = minute_windows
        stores = DictAssetStores()
        # A gap this wide keeps the memory under both clocks, so the second read runs (and can fail) under both.
        first_summary = self.run(first, stores, visibility_gap=timedelta(minutes=10))
        syslog_ng.wait_for_lines(first_summary["sent"])
        while datetime.now(timezone.utc) <= hidden_at + timedelta(seconds=1):
            time.sleep(0.2)
        store = DictStore()
        task = dict(
            window_start=later[0].isoformat(),
            window_end=later[1].isoformat(),
            settle=timedelta(0),
            reconcile_after=timedelta(minutes=1),
            visibility_gap=timedelta(minutes=10),
        )
        # Attempt 1 delivers its window, then the API fails for good during the reconciliation read.
        pages = len(sim.ground_truth(*later)) // 200 + 1  # a short last page ends the walk
        sim.faults.update(revoke_key_after=1 + pages)  # event-actions + the window's pages
        with pytest.raises(Exception, match="401"):
            operator(**task).execute({"task_state_store": store, "asset_state_store": stores})
        assert store.values[CHECKPOINT_KEY]["phase"] == "reconcile"
        sim.faults.update(revoke_key_after=None)
        summary = operator(**task).execute({"task_state_store": store, "asset_state_store": stores})
        truth = set(sim.ground_truth(*first)) | set(sim.ground_truth(*later))
        got = received_ids(syslog_ng.wait_for_lines(len(truth)))
        assert set(got) == truth and max(got.values()) == 1
        assert summary["reconcile"]["late_delivered"] == (3 if filter_clock == "time" else 0)
        assert store.values == {}
