"""The silent-source alarm on the operator: real simulator and syslog-ng, the organization's asset state store.

20-second windows and a 40-second alarm span stand for hourly windows and the default 24 h. A window is judged
only when it ended within the span of now, so each test runs its recent windows right after the fixture starts.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_atlassian_qradar import metrics
from airflow_provider_atlassian_qradar.silence import STATE_KEY
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from tests.transfers.test_atlassian_to_qradar import (
    API_KEY,
    ORG,
    DictStore,
    operator,
    use_simulator,
)
from tests.transfers.test_second_read import DictAssetStores

SPAN = timedelta(seconds=40)
LENGTH = timedelta(seconds=20)
# No rate-share hold between these back-to-back windows (the real budget is tested elsewhere).
FAST = {"events-stream": 6000.0, "events": 6000.0}


class MetricsRecorder:
    """Stands in for Airflow's stats client (the real one is exercised by tests/integration/test_metrics_e2e.py)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, float]] = []

    def incr(self, name: str, count: int, *, tags: dict[str, str]) -> None:
        self.sent.append(("incr", name, count))

    def gauge(self, name: str, value: float, *, tags: dict[str, str]) -> None:
        self.sent.append(("gauge", name, value))

    def timing(self, name: str, value: float, *, tags: dict[str, str]) -> None:
        self.sent.append(("timing", name, value))

    def value(self, name: str) -> float | None:
        found = [value for _, sent_name, value in self.sent if sent_name == f"atlassian_qradar.{name}"]
        return found[-1] if found else None


@pytest.fixture
def recorder(monkeypatch):
    recording = MetricsRecorder()
    monkeypatch.setattr(metrics, "_stats", lambda: recording)
    return recording


@pytest.fixture
def quiet_org(monkeypatch):
    """Events only in the window that ended 40 s ago (``window(now, 2)``); the 40 s after it are silent."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    busy = window(now, 2)
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=busy[0],
        end=busy[1],
        events_per_hour=3600,
        seed=16,
        processing_lag_max_seconds=0,
        stream_requests_per_minute=0,
    )
    with run_in_thread(config) as sim:
        use_simulator(monkeypatch, sim)
        yield sim, now


def window(now: datetime, windows_ago: int) -> tuple[datetime, datetime]:
    """The 20-second window that ended ``windows_ago`` windows before ``now``."""
    end = now - windows_ago * LENGTH
    return end - LENGTH, end


def run(bounds: tuple[datetime, datetime], stores: DictAssetStores, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("silence_after", SPAN)
    task = operator(
        window_start=bounds[0].isoformat(),
        window_end=bounds[1].isoformat(),
        settle=timedelta(0),
        reconcile_after=None,
        requests_per_minute=FAST,
        **kwargs,
    )
    return task.execute({"task_state_store": DictStore(), "asset_state_store": stores})


@pytest.mark.usefixtures("syslog_ng")  # every window is delivered to a real syslog-ng
class TestSilentSourceAlarm:
    def test_warns_and_counts_once_the_span_passes_without_a_delivery(self, quiet_org, recorder, capsys):
        sim, now = quiet_org
        stores = DictAssetStores()
        delivered = run(window(now, 2), stores)
        assert delivered["sent"] == len(sim.ground_truth(*window(now, 2))) > 10
        assert not delivered["silence"]["silent"]
        first_quiet = run(window(now, 1), stores)
        assert first_quiet["sent"] == 0 and not first_quiet["silence"]["silent"]
        assert "silent source" not in capsys.readouterr().out
        second_quiet = run(window(now, 0), stores)
        logged = capsys.readouterr().out
        assert second_quiet["sent"] == 0
        assert second_quiet["silence"]["silent"] is True
        assert second_quiet["silence"]["since"] == window(now, 2)[1].isoformat()
        assert "silent source: no audit event of organization org-op" in logged
        for hint in ("API key has not expired", "Atlassian Guard", "no filter is set"):
            assert hint in logged
        assert recorder.value("silent_source") == 1
        assert recorder.value("silence_seconds") == 40
        # The lag keeps growing while nothing arrives: it is measured from the newest event ever delivered.
        newest = max(e["attributes"]["processedAt"] for e in sim.events_between(*window(now, 2)))
        newest_at = datetime.fromisoformat(newest.replace("Z", "+00:00"))
        assert recorder.value("lag_seconds") >= (now - newest_at).total_seconds()
        assert API_KEY not in logged

    def test_opted_in_it_fails_after_delivering_and_names_the_filter(self, quiet_org, recorder):
        _sim, now = quiet_org
        stores = DictAssetStores()
        run(window(now, 2), stores, fail_when_silent=True)
        run(window(now, 1), stores, fail_when_silent=True)
        with pytest.raises(AirflowFailException, match="fail_when_silent is on") as failure:
            run(window(now, 0), stores, fail_when_silent=True, product="confluence")
        assert "the filter {'product': 'confluence'} is not narrower than intended" in str(failure.value)
        assert API_KEY not in str(failure.value)
        record = stores.by_name["atlassian_audit_log__atlassian_admin_default"].values[STATE_KEY]
        assert record["frontier"] == window(now, 0)[1].isoformat(), "the window was recorded before failing"
        # A rerun of that newest window is still silent: it fails again (the alert repeats until events flow).
        with pytest.raises(AirflowFailException):
            run(window(now, 0), stores, fail_when_silent=True)

    def test_a_backfill_of_old_empty_windows_never_trips_it(self, quiet_org, recorder, capsys):
        _sim, now = quiet_org
        stores = DictAssetStores()
        run(window(now, 0), stores, fail_when_silent=True)  # the newest window (empty, first ever: just watching)
        for windows_ago in (30, 12, 11, 10, 5, 1):  # older windows, empty but for one, some far outside the span
            summary = run(window(now, windows_ago), stores, fail_when_silent=True)
            assert summary["silence"]["judged"] is False
        assert "silent source" not in capsys.readouterr().out
        assert recorder.value("silent_source") == 0  # only the live window was judged

    def test_turned_off_it_keeps_no_record(self, quiet_org, recorder):
        _sim, now = quiet_org
        stores = DictAssetStores()
        for windows_ago in (2, 1, 0):
            summary = run(window(now, windows_ago), stores, silence_after=None, fail_when_silent=True)
            assert "silence" not in summary
        assert all(STATE_KEY not in store.values for store in stores.by_name.values())
        assert recorder.value("silent_source") is None

    def test_a_failing_state_store_never_fails_a_delivered_window(self, quiet_org, recorder, capsys):
        _sim, now = quiet_org

        class BrokenStore(DictStore):
            def set(self, key: str, value: Any) -> None:
                raise OSError("database is locked")

        class BrokenStores(DictAssetStores):
            def __getitem__(self, asset: Any) -> DictStore:
                return BrokenStore()

        summary = run(window(now, 2), BrokenStores(), fail_when_silent=True)
        assert summary["sent"] > 10 and "silence" not in summary
        assert "could not store the silent-source alarm's record (database is locked)" in capsys.readouterr().out
