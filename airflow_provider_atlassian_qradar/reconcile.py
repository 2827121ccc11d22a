"""Late-event reconciliation: what a window's first read must remember so a second read sends only what it missed.

Pure code: no Airflow import.

An event can become visible in the API after a window was first read (Atlassian states no bound on processing
lag). Under an event-time filter such an event still belongs to its old window, so each window is read again once
it can no longer change much. The second read must send exactly the events the first one did not, in bounded
space. The stream is ordered by ``processedAt`` and an event is visible only once it has been processed, so:

* every event processed before ``cutoff = first read start - visibility gap`` was visible to the first read and
  was delivered by it (the gap covers indexing delay and clock skew between Atlassian and the worker);
* the first read remembers the ids it delivered whose ``processedAt`` is at or after the cutoff: only those
  processed in the last minutes before and during the read, a handful, not every id of a large window;
* the second read walks the window newest-processed first and stops at the first event processed before the
  cutoff; it sends the events that are not remembered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_atlassian_qradar.windows import CLOCK_PROCESSED, Window, to_epoch_ms

#: How much earlier than the first read an event may have been processed and still not have been visible to it.
DEFAULT_VISIBILITY_GAP = timedelta(minutes=5)
#: At most this many ids are remembered per window; past it the second read may re-send (never lose) events.
MAX_REMEMBERED_IDS = 20_000


@dataclass
class FirstReadMemory:
    """The ids a window's first read delivered that a second read could see as new.

    :param cutoff_ms: events processed before this (epoch ms) were visible to the first read.
    :param ids: ids delivered by the first read (and by the second, as it goes) processed at or after the cutoff.
    :param overflow: more ids than :data:`MAX_REMEMBERED_IDS` qualified; the second read may duplicate some.
    """

    cutoff_ms: int
    ids: dict[str, None] = field(default_factory=dict)
    overflow: bool = False

    @classmethod
    def starting(cls, read_started: datetime, gap: timedelta = DEFAULT_VISIBILITY_GAP) -> FirstReadMemory:
        """The memory of a first read that started at ``read_started``."""
        return cls(cutoff_ms=to_epoch_ms(read_started - gap))

    def may_be_missed(self, processed_ms: int | None) -> bool:
        """Whether an event processed at ``processed_ms`` might not have been visible to the first read."""
        return processed_ms is None or processed_ms >= self.cutoff_ms

    def note(self, event_ids: Iterable[str], processed_ms: Iterable[int | None]) -> None:
        """Remember delivered events that a second read could otherwise take for late ones."""
        for event_id, processed in zip(event_ids, processed_ms, strict=True):
            if not self.may_be_missed(processed) or event_id in self.ids:
                continue
            if len(self.ids) >= MAX_REMEMBERED_IDS:
                self.overflow = True
                continue
            self.ids[event_id] = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form for Airflow's state stores."""
        return {"cutoff_ms": self.cutoff_ms, "ids": list(self.ids), "overflow": self.overflow}

    @classmethod
    def from_json(cls, value: Any) -> FirstReadMemory | None:
        """Read :meth:`to_json` back; None for anything else."""
        if not isinstance(value, dict) or not isinstance(value.get("cutoff_ms"), int):
            return None
        ids = value.get("ids")
        return cls(
            cutoff_ms=value["cutoff_ms"],
            ids=dict.fromkeys(str(i) for i in ids) if isinstance(ids, list) else {},
            overflow=bool(value.get("overflow")),
        )


def needs_second_read(memory: FirstReadMemory, window: Window, reconcile_after: timedelta, clock: str) -> str | None:
    """Return why a window needs no second read, or None when it does.

    :param memory: the first read's memory (its cutoff).
    :param window: the window read.
    :param reconcile_after: when the second read would happen, after the window's end.
    :param clock: the filter clock the first read observed (``time``, ``processed`` or ``unknown``).
    """
    if memory.cutoff_ms >= to_epoch_ms(window.end + reconcile_after):
        return "first read after the window had settled"
    if clock == CLOCK_PROCESSED and memory.cutoff_ms >= window.end_ms:
        # Filtering on processedAt, the window holds only events processed before its end: all were visible.
        return "the API filters on processedAt; late events land in later windows"
    return None


def select_late(
    events: list[dict[str, Any]],
    processed_ms: list[int | None],
    memory: FirstReadMemory,
    *,
    newest_first: bool = True,
) -> tuple[list[int], bool]:
    """Pick the events of one page of a second read that the first read did not deliver.

    Return ``(indexes to send, done)``. Newest-processed first (``sortOrder=desc``), the walk is ``done`` at the
    first event processed before the cutoff: everything after it is older still. In ascending order (a server
    that refuses ``desc``) such events are skipped and the walk goes on.

    :param events: the page's events, in walk order.
    :param processed_ms: their ``processedAt`` in epoch ms.
    :param memory: the first read's memory.
    :param newest_first: whether the walk is in decreasing ``processedAt`` order.
    """
    chosen: list[int] = []
    for index, (event, processed) in enumerate(zip(events, processed_ms, strict=True)):
        if not memory.may_be_missed(processed):
            if newest_first:
                return chosen, True
            continue
        if event.get("id") not in memory.ids:
            chosen.append(index)
    return chosen, False
