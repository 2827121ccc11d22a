"""Late-event reconciliation as pure logic: first read, memory, second read, under both filter clocks.

A model server answers each read the way the simulator does: the events whose filter-clock value lies in the
window and that are visible at the read time (processed at least ``delay`` earlier), in ``(processedAt, id)``
order. Hypothesis draws the events (processing lags with a long tail), the window tiling, when each read
happens and the visibility delay; the union of what the first and second reads send must be every event of the
tiled range, each once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar.reconcile import FirstReadMemory, needs_second_read, select_late
from airflow_provider_atlassian_qradar.windows import ClockEvidence, Window, from_epoch_ms, to_epoch_ms

ORIGIN = datetime(2026, 11, 20, tzinfo=timezone.utc)
ORIGIN_MS = to_epoch_ms(ORIGIN)
MINUTE = 60_000
GAP = timedelta(minutes=5)
RECONCILE_AFTER = timedelta(hours=3)


@dataclass(frozen=True)
class Event:
    event_id: str
    time_ms: int
    processed_ms: int


def serve(events: list[Event], window: Window, clock: str, read_ms: int, delay_ms: int, desc: bool) -> list[Event]:
    def clock_ms(event: Event) -> int:
        return event.processed_ms if clock == "processed" else event.time_ms

    chosen = [e for e in events if window.contains_ms(clock_ms(e)) and e.processed_ms + delay_ms <= read_ms]
    return sorted(chosen, key=lambda e: (e.processed_ms, e.event_id), reverse=desc)


def as_page(events: list[Event]) -> tuple[list[dict[str, str]], list[int | None]]:
    return [{"id": e.event_id} for e in events], [e.processed_ms for e in events]


lags = st.one_of(
    st.integers(min_value=0, max_value=10 * MINUTE),  # the usual processing lag
    st.integers(min_value=10 * MINUTE, max_value=150 * MINUTE),  # the long tail, within the reconcile horizon
)
events_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=6 * 60 * MINUTE - 1), lags), min_size=0, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(
    raw_events=events_strategy,
    cuts=st.lists(st.integers(min_value=1, max_value=6 * 60 * MINUTE - 1), max_size=5, unique=True),
    clock=st.sampled_from(["time", "processed"]),
    settle_minutes=st.integers(min_value=0, max_value=20),
    first_read_late_minutes=st.one_of(st.just(0), st.integers(min_value=0, max_value=600)),
    delay_ms=st.integers(min_value=0, max_value=int(GAP.total_seconds() * 1000)),
    page_size=st.integers(min_value=1, max_value=7),
)
def test_first_and_second_read_deliver_every_event_once(
    raw_events, cuts, clock, settle_minutes, first_read_late_minutes, delay_ms, page_size
):
    events = [Event(f"e{i}", ORIGIN_MS + t, ORIGIN_MS + t + lag) for i, (t, lag) in enumerate(raw_events)]
    bounds = [0, *sorted(cuts), 6 * 60 * MINUTE]
    windows = [
        Window(from_epoch_ms(ORIGIN_MS + a), from_epoch_ms(ORIGIN_MS + b)) for a, b in itertools.pairwise(bounds)
    ]
    # Under the processed clock the tiled range holds the events processed inside it.
    in_range = Window(from_epoch_ms(ORIGIN_MS), from_epoch_ms(ORIGIN_MS + bounds[-1]))
    expected = {
        e.event_id for e in events if in_range.contains_ms(e.processed_ms if clock == "processed" else e.time_ms)
    }
    delivered: list[str] = []
    for window in windows:
        first_read_ms = window.end_ms + (settle_minutes + first_read_late_minutes) * MINUTE
        memory = FirstReadMemory.starting(from_epoch_ms(first_read_ms), GAP)
        evidence = ClockEvidence()
        seen = serve(events, window, clock, first_read_ms, delay_ms, desc=False)
        for event in seen:
            evidence.add(window, event.time_ms, event.processed_ms)
        memory.note([e.event_id for e in seen], [e.processed_ms for e in seen])
        delivered += [e.event_id for e in seen]
        assert evidence.clock in (clock, "unknown"), "the evidence contradicted the server's real clock"
        if needs_second_read(memory, window, RECONCILE_AFTER, evidence.clock):
            continue
        second_read_ms = to_epoch_ms(window.end + RECONCILE_AFTER)
        newest_first = serve(events, window, clock, second_read_ms, delay_ms, desc=True)
        for start in range(0, len(newest_first), page_size):
            page = newest_first[start : start + page_size]
            chosen, done = select_late(*as_page(page), memory)
            delivered += [page[i].event_id for i in chosen]
            if done:
                break
    assert len(delivered) == len(set(delivered)), "an event was delivered twice"
    assert set(delivered) == expected, f"missing {sorted(expected - set(delivered))}"


def test_memory_is_bounded_and_overflow_is_reported():
    memory = FirstReadMemory(cutoff_ms=0)
    memory.note((f"id{i}" for i in range(30_000)), [1] * 30_000)
    assert len(memory.ids) == 20_000 and memory.overflow
    assert FirstReadMemory.from_json(memory.to_json()) == memory


def test_only_events_processed_near_the_read_are_remembered():
    read = ORIGIN + timedelta(hours=2)
    memory = FirstReadMemory.starting(read, GAP)
    memory.note(["old", "recent", "unknown"], [to_epoch_ms(read - timedelta(hours=1)), to_epoch_ms(read), None])
    assert list(memory.ids) == ["recent", "unknown"]


def test_a_window_read_long_after_it_closed_needs_no_second_read():
    window = Window(ORIGIN, ORIGIN + timedelta(hours=1))
    late_read = FirstReadMemory.starting(window.end + timedelta(days=2), GAP)
    assert (
        needs_second_read(late_read, window, timedelta(hours=24), "time") == "first read after the window had settled"
    )
    prompt_read = FirstReadMemory.starting(window.end + timedelta(minutes=15), GAP)
    assert needs_second_read(prompt_read, window, timedelta(hours=24), "time") is None
    assert needs_second_read(prompt_read, window, timedelta(hours=24), "unknown") is None
    assert "processedAt" in str(needs_second_read(prompt_read, window, timedelta(hours=24), "processed"))


def test_ascending_second_read_skips_instead_of_stopping():
    memory = FirstReadMemory(cutoff_ms=100)
    events, processed = [{"id": "a"}, {"id": "b"}, {"id": "c"}], [50, 150, 160]
    assert select_late(events, processed, memory, newest_first=False) == ([1, 2], False)
    assert select_late(list(reversed(events)), list(reversed(processed)), memory) == ([0, 1], True)
