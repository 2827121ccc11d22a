"""
Deterministic generator of realistic Atlassian organization audit-log events, and the index that serves them.

Events are not all held as dicts: :class:`EventStore` keeps one compact :class:`IndexEntry` per event (times,
id, flags) sorted two ways, and materialises the JSON of an event on demand from an RNG seeded by
``(seed, event id)``. A 1M-event range therefore costs a few hundred MB, not several GB.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sandbox.atlassian_sim.builder import ACTIONS, EventBuilder, Pools
from sandbox.atlassian_sim.config import SimulatorConfig
from sandbox.atlassian_sim.index import (
    FLAG_EXPLICIT,
    PRECISION_MILLIS,
    IndexEntry,
    format_time,
    iter_generated_index,
    parse_time,
)

_DAY_MS = 86_400_000
_NEG_INF = -(1 << 62)
_POS_INF = 1 << 62


def dump_json(value: Any) -> str:
    """Compact JSON as the simulator sends it: raw UTF-8 (no ASCII escaping), control chars escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _without_processed_at(event: dict[str, Any]) -> dict[str, Any]:
    attributes = {key: value for key, value in event["attributes"].items() if key != "processedAt"}
    return {**event, "attributes": attributes}


class EventStore:
    """
    All events of one :class:`SimulatorConfig`, indexed for the two list endpoints.

    ``by_processed`` is sorted by ``(processed_ms, event_id)`` (the stream order), ``by_time`` by
    ``(time_us, event_id)`` (``/events`` walks it backwards). Visibility and retention are applied per
    query against the ``now_ms`` the caller passes.
    """

    def __init__(self, config: SimulatorConfig, cache_size: int = 50_000) -> None:
        self.config = config
        self._builder = EventBuilder(config, Pools(config))
        entries = list(iter_generated_index(config))
        self._explicit: dict[str, dict[str, Any]] = {}
        for raw in config.extra_events:
            entries.append(self._index_explicit(raw))
        self._by_id = {entry.event_id: entry for entry in entries}
        if len(self._by_id) != len(entries):
            raise ValueError("SimulatorConfig.extra_events reuse an event id that already exists")
        entries.sort(key=lambda entry: (entry.time_us, entry.event_id))
        self.by_time: list[IndexEntry] = entries
        self.by_processed: list[IndexEntry] = sorted(entries, key=lambda entry: (entry.processed_ms, entry.event_id))
        self.max_lag_ms = max((entry.processed_ms - entry.time_ms for entry in entries), default=0)
        self._event_cached = functools.lru_cache(maxsize=cache_size)(self._materialise)
        self._json_cached = functools.lru_cache(maxsize=cache_size * 2)(self._render)

    def _index_explicit(self, raw: dict[str, Any]) -> IndexEntry:
        try:
            event_id = str(raw["id"])
            time_us, precision = parse_time(raw["attributes"]["time"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"extra event needs id and attributes.time in ISO 8601: {error}") from error
        processed_text = raw["attributes"].get("processedAt")
        processed_ms = parse_time(processed_text)[0] // 1000 if processed_text else -(-time_us // 1000)
        event = json.loads(json.dumps(raw))  # private deep copy: callers may mutate their dict later
        event["attributes"].setdefault("processedAt", format_time(processed_ms * 1000, PRECISION_MILLIS))
        self._explicit[event_id] = event
        return IndexEntry(time_us, processed_ms, event_id, precision | FLAG_EXPLICIT)

    def __len__(self) -> int:
        return len(self.by_time)

    def entry(self, event_id: str) -> IndexEntry | None:
        """Index entry of an event id, or None."""
        return self._by_id.get(event_id)

    def _materialise(self, entry: IndexEntry) -> dict[str, Any]:
        if entry.flags & FLAG_EXPLICIT:
            return self._explicit[entry.event_id]
        return self._builder.build(entry)

    def shared_event(self, entry: IndexEntry) -> dict[str, Any]:
        """The cached stream-form dict of an event. Read-only: it is shared between threads."""
        return self._event_cached(entry)

    def _render(self, entry: IndexEntry, with_processed_at: bool) -> str:
        event = self.shared_event(entry)
        return dump_json(event if with_processed_at else _without_processed_at(event))

    def event_json(self, entry: IndexEntry, with_processed_at: bool) -> str:
        """Cached JSON text of an event; ``/events`` pages drop ``processedAt``, stream pages keep it."""
        return self._json_cached(entry, with_processed_at)

    def event(self, entry: IndexEntry) -> dict[str, Any]:
        """A fresh, caller-owned dict of an event in stream form (with ``processedAt``)."""
        result: dict[str, Any] = json.loads(self.event_json(entry, True))
        return result

    def floor_ms(self, now_ms: int) -> int:
        """Oldest event time (ms) retention still returns at ``now_ms``."""
        return now_ms - self.config.retention_days * _DAY_MS

    def visible_until_ms(self, now_ms: int) -> int:
        """The newest ``processedAt`` (ms) a reader sees at ``now_ms`` (visibility model), or +inf."""
        if not self.config.visible_only_when_processed:
            return _POS_INF
        return now_ms - int(self.config.visibility_delay_seconds * 1000)

    def is_served(self, entry: IndexEntry, now_ms: int) -> bool:
        """Whether retention and visibility let the API return this event at ``now_ms``."""
        if entry.time_ms < self.floor_ms(now_ms):
            return False
        return entry.processed_ms <= self.visible_until_ms(now_ms)

    def filter_ms(self, entry: IndexEntry, clock: str | None = None) -> int:
        """The value ``from``/``to`` of the stream compare with: event time or processedAt (ms)."""
        return entry.processed_ms if (clock or self.config.filter_clock) == "processed" else entry.time_ms

    # --- stream order -----------------------------------------------------------------------------------

    def walk_stream(
        self,
        *,
        from_ms: int | None,
        to_ms: int | None,
        after: tuple[int, str] | None,
        ascending: bool,
        now_ms: int,
        include_after: bool = False,
    ) -> Iterator[IndexEntry]:
        """
        Served events with ``from_ms <= clock <= to_ms``, strictly beyond ``after`` in the walk direction.

        The clock is ``config.filter_clock``: the event time, or its processedAt.

        :param after: a ``(processed_ms, event_id)`` position, or None for the start of the walk.
        :param ascending: walk by increasing ``(processed_ms, event_id)``.
        :param include_after: start at ``after`` itself instead of just beyond it.
        """
        floor = self.floor_ms(now_ms)
        low_ms = max(from_ms if from_ms is not None else _NEG_INF, floor)  # processedAt >= time >= from
        by_processed = self.config.filter_clock == "processed"
        slack = 0 if by_processed else self.max_lag_ms
        high_ms = to_ms + slack if to_ms is not None else _POS_INF
        high_ms = min(high_ms, self.visible_until_ms(now_ms))
        entries = self.by_processed

        def stream_key(entry: IndexEntry) -> tuple[int, str]:
            return (entry.processed_ms, entry.event_id)

        def processed(entry: IndexEntry) -> int:
            return entry.processed_ms

        def wanted(entry: IndexEntry) -> bool:
            if entry.time_ms < floor:
                return False
            clock_ms = entry.processed_ms if by_processed else entry.time_ms
            return (to_ms is None or clock_ms <= to_ms) and (from_ms is None or clock_ms >= from_ms)

        if ascending:
            index = bisect.bisect_left(entries, low_ms, key=processed)
            if after is not None:
                seek = bisect.bisect_left if include_after else bisect.bisect_right
                index = max(index, seek(entries, after, key=stream_key))
            for entry in itertools.islice(entries, index, None):
                if entry.processed_ms > high_ms:
                    return
                if wanted(entry):
                    yield entry
        else:
            index = bisect.bisect_right(entries, high_ms, key=processed) - 1
            if after is not None:
                seek = bisect.bisect_right if include_after else bisect.bisect_left
                index = min(index, seek(entries, after, key=stream_key) - 1)
            while index >= 0:
                entry = entries[index]
                if entry.processed_ms < low_ms:
                    return
                if wanted(entry):
                    yield entry
                index -= 1

    # --- /events order ----------------------------------------------------------------------------------

    def walk_time(
        self,
        *,
        from_ms: int | None,
        to_ms: int | None,
        after: tuple[int, str] | None,
        newest_first: bool,
        now_ms: int,
        matches: Callable[[IndexEntry], bool] | None = None,
        include_after: bool = False,
    ) -> Iterator[IndexEntry]:
        """
        Served events with ``from_ms <= time_ms <= to_ms`` by ``(time_us, event_id)``, beyond ``after``.

        :param after: a ``(time_us, event_id)`` position, or None for the start of the walk.
        :param newest_first: walk by decreasing ``(time_us, event_id)`` (the ``/events`` order).
        :param matches: extra predicate (the ``/events`` filters).
        :param include_after: start at ``after`` itself instead of just beyond it.
        """
        low_us = max(from_ms if from_ms is not None else _NEG_INF, self.floor_ms(now_ms)) * 1000
        high_us = (to_ms + 1) * 1000 if to_ms is not None else _POS_INF  # exclusive
        entries = self.by_time
        visible_until = self.visible_until_ms(now_ms)

        def time_key(entry: IndexEntry) -> tuple[int, str]:
            return (entry.time_us, entry.event_id)

        def time_us(entry: IndexEntry) -> int:
            return entry.time_us

        def wanted(entry: IndexEntry) -> bool:
            if entry.processed_ms > visible_until:
                return False
            return matches is None or matches(entry)

        if newest_first:
            index = bisect.bisect_left(entries, high_us, key=time_us) - 1
            if after is not None:
                seek = bisect.bisect_right if include_after else bisect.bisect_left
                index = min(index, seek(entries, after, key=time_key) - 1)
            while index >= 0:
                entry = entries[index]
                if entry.time_us < low_us:
                    return
                if wanted(entry):
                    yield entry
                index -= 1
        else:
            index = bisect.bisect_left(entries, low_us, key=time_us)
            if after is not None:
                seek = bisect.bisect_left if include_after else bisect.bisect_right
                index = max(index, seek(entries, after, key=time_key))
            for entry in itertools.islice(entries, index, None):
                if entry.time_us >= high_us:
                    return
                if wanted(entry):
                    yield entry

    def between(self, start_ms: int, end_ms: int, now_ms: int, clock: str | None = None) -> list[IndexEntry]:
        """
        Served events with ``start_ms <= clock < end_ms``, sorted by ``(processed_ms, event_id)``.

        :param clock: ``time`` or ``processed``; default ``config.filter_clock`` (what the stream returns).
        """
        if (clock or self.config.filter_clock) == "processed":
            lo = bisect.bisect_left(self.by_processed, start_ms, key=lambda entry: entry.processed_ms)
            hi = bisect.bisect_left(self.by_processed, end_ms, key=lambda entry: entry.processed_ms)
            return [entry for entry in self.by_processed[lo:hi] if self.is_served(entry, now_ms)]
        low_us, high_us = start_ms * 1000, end_ms * 1000
        lo = bisect.bisect_left(self.by_time, low_us, key=lambda entry: entry.time_us)
        hi = bisect.bisect_left(self.by_time, high_us, key=lambda entry: entry.time_us)
        chosen = [entry for entry in self.by_time[lo:hi] if self.is_served(entry, now_ms)]
        chosen.sort(key=lambda entry: (entry.processed_ms, entry.event_id))
        return chosen


def generate_events(config: SimulatorConfig) -> list[dict[str, Any]]:
    """
    Every event of ``config`` (generated plus ``extra_events``) as full stream-form dicts.

    Deterministic: the same config gives identical events, byte for byte once JSON-dumped. Sorted by
    ``(processedAt, id)``. Ignores retention and visibility (those depend on the wall clock).
    """
    store = EventStore(config, cache_size=0)
    return [store.event(entry) for entry in store.by_processed]


def iter_actions() -> Iterable[dict[str, Any]]:
    """The ``/event-actions`` items for every action the generator uses."""
    for action in ACTIONS:
        yield {
            "id": action.action_id,
            "type": "event-actions",
            "attributes": {"displayName": action.display_name, "groupDisplayName": action.group_display_name},
        }


def ids_of(entries: Sequence[IndexEntry]) -> list[str]:
    """Event ids of index entries, in order."""
    return [entry.event_id for entry in entries]
