"""Pure window arithmetic and lenient timestamp parsing (no Airflow needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar.windows import Window, from_epoch_ms, parse_timestamp_ms, to_epoch_ms

UTC = timezone.utc


class TestParseTimestampMs:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2021-04-03T06:12:11.117451Z", 1617430331117),  # microseconds: floored to ms
            ("2021-04-01T22:55:19.008Z", 1617317719008),
            ("2021-04-01T22:55:18Z", 1617317718000),
            ("2021-04-01T22:55:18.5Z", 1617317718500),
            ("2021-04-02T00:55:18+02:00", 1617317718000),
            ("2021-04-01T17:55:18-0500", 1617317718000),
            ("2021-04-01t22:55:18z", 1617317718000),
            ("2021-04-01T22:55:18", 1617317718000),  # no zone: UTC
        ],
    )
    def test_accepts_the_forms_atlassian_sends(self, text, expected):
        assert parse_timestamp_ms(text) == expected

    @pytest.mark.parametrize("text", ["", "yesterday", "2021-04-01", "1617317718000", "2021-13-01T00:00:00Z"])
    def test_refuses_what_is_not_a_date_time(self, text):
        with pytest.raises(ValueError):
            parse_timestamp_ms(text)

    @given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
    def test_round_trips_with_to_epoch_ms(self, moment):
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert parse_timestamp_ms(text) == to_epoch_ms(moment)
        assert from_epoch_ms(to_epoch_ms(moment)) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class TestWindow:
    START = datetime(2026, 11, 24, 4, tzinfo=UTC)

    def test_half_open_bounds(self):
        window = Window(self.START, self.START + timedelta(hours=1))
        assert window.contains_ms(window.start_ms)
        assert window.contains_ms(window.end_ms - 1)
        assert not window.contains_ms(window.end_ms)
        assert not window.contains_ms(window.start_ms - 1)
        assert window.label() == "20261124T040000Z-20261124T050000Z"

    def test_refuses_empty_inverted_and_naive_windows(self):
        with pytest.raises(ValueError, match="not after its start"):
            Window(self.START, self.START)
        with pytest.raises(ValueError, match="naive datetime"):
            Window(datetime(2026, 1, 1), datetime(2026, 1, 2))

    @given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=10**7))
    def test_adjacent_windows_share_no_millisecond(self, first, second):
        a = Window(self.START, self.START + timedelta(milliseconds=first + 1))
        b = Window(a.end, a.end + timedelta(milliseconds=second))
        assert a.end_ms == b.start_ms
        assert not (a.contains_ms(b.start_ms) or b.contains_ms(a.end_ms - 1))
