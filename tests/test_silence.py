"""The silent-source alarm's judgement (pure): window time since the last delivery, live windows only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_atlassian_qradar.silence import DeliveryRecord, assess
from airflow_provider_atlassian_qradar.windows import Window

HOUR = timedelta(hours=1)
NOW = datetime(2026, 12, 2, 12, 20, tzinfo=timezone.utc)
SPAN = timedelta(hours=24)


def hour_ending(hours_ago: int) -> Window:
    end = NOW.replace(minute=0) - hours_ago * HOUR
    return Window(end - HOUR, end)


def run(record, window, delivered=0, newest_ms=None, now=NOW, span=SPAN):
    return assess(record, window, delivered=delivered, newest_processed_ms=newest_ms, now=now, silence_after=span)


class TestAssess:
    def test_hourly_windows_trip_after_24_empty_hours_and_a_delivery_resets(self):
        record = run(None, hour_ending(30), delivered=5, newest_ms=1).record  # history: not judged, but recorded
        verdicts = []
        for hours_ago in range(23, -1, -1):  # the 24 hours that ended within the span of now, all empty
            verdict = run(record, hour_ending(hours_ago))
            record = verdict.record
            verdicts.append(verdict)
        assert all(v.judged for v in verdicts)
        # Watching began with the first live window (the one that ended 23 h ago); silence counts from its start.
        assert [v.silent for v in verdicts] == [False] * 23 + [True]
        assert verdicts[-1].silence == timedelta(hours=24)
        assert verdicts[-1].since == hour_ending(23).start
        later = run(record, hour_ending(-1))
        assert later.silent and later.silence == timedelta(hours=25)  # still nothing delivered
        delivered = run(later.record, hour_ending(-2), delivered=1)
        assert delivered.judged and not delivered.silent and delivered.silence == timedelta(0)
        assert not run(delivered.record, hour_ending(-3)).silent

    def test_a_delivery_inside_the_span_keeps_it_quiet(self):
        record = run(None, hour_ending(23), delivered=3, newest_ms=42).record
        for hours_ago in range(22, -1, -1):
            verdict = run(record, hour_ending(hours_ago))
            record = verdict.record
            assert not verdict.silent
        assert verdict.silence == timedelta(hours=23)
        assert record.newest_processed_ms == 42

    def test_old_empty_windows_of_a_backfill_never_trip_it(self):
        record = run(None, hour_ending(0), delivered=1).record
        # Reruns of the last hours, then a backfill of two months of empty hours: none is the newest window.
        for hours_ago in [*range(1, 6), *(24 * days for days in range(1, 60))]:
            verdict = run(record, hour_ending(hours_ago))
            assert not verdict.judged and not verdict.silent
            record = verdict.record
        assert record.frontier == hour_ending(0).end, "old windows never move the frontier back"
        assert record.last_delivery_end == hour_ending(0).end

    def test_a_catchup_over_a_quiet_month_trips_only_on_recent_windows(self):
        record = None
        judged = []
        for hours_ago in range(24 * 30, -1, -1):  # the scheduler's catchup: oldest first, nothing delivered
            verdict = run(record, hour_ending(hours_ago))
            record = verdict.record
            if verdict.judged:
                judged.append(hours_ago)
            assert verdict.silent == (hours_ago == 0)
        assert max(judged) == 23, "only windows that ended within the span of now are judged"

    def test_a_gap_never_read_is_not_silence(self):
        # One backfilled old hour that delivered, then the schedule starts today: the month between was never read.
        record = run(None, hour_ending(24 * 30), delivered=7).record
        verdict = run(record, hour_ending(0))
        assert verdict.judged and not verdict.silent and verdict.silence == HOUR

    def test_an_old_delivery_never_moves_the_last_delivery_back(self):
        record = run(None, hour_ending(2), delivered=1, newest_ms=2000).record
        record = run(record, hour_ending(200), delivered=1, newest_ms=1000).record
        assert record.last_delivery_end == hour_ending(2).end
        assert record.newest_processed_ms == 2000

    def test_a_rerun_of_the_newest_window_is_judged(self):
        record = run(None, hour_ending(0)).record
        assert run(record, hour_ending(0)).judged

    def test_the_record_survives_its_json_form_and_bad_json_starts_afresh(self):
        record = run(None, hour_ending(0), delivered=2, newest_ms=123).record
        assert DeliveryRecord.from_json(record.to_json()) == record
        assert DeliveryRecord.from_json({"frontier": "not a time"}) is None
        assert DeliveryRecord.from_json(None) is None
