"""The silent-source alarm: has the organization delivered nothing for longer than the alarm span? (pure Python)

Audit connectors fail quietly: a key that lost its scope, an Atlassian Guard subscription that lapsed, a filter
that matches nothing all look like "0 events", window after window. Each window's task keeps one small record per
organization (in the organization's asset state store, key :data:`STATE_KEY`) and asks :func:`assess` whether
the source has gone silent.

Silence is measured in **window time**, not wall time: the span from the later of (a) the end of the newest
window that delivered an event and (b) the start of the first *live* window ever judged, to the end of the window
being judged. A window is *live*, and only then judged, when it is the newest window run so far (a rerun of it
included) and it ended within the alarm span of now. Consequences:

- a backfill or a rerun of old windows never trips the alarm, even when those windows were empty: their silence is
  history, not an outage, and they never move the reference point (b);
- an old window that delivers events moves (a) forward only if it is newer than the last delivery (never back);
- a catchup over a quiet month trips the alarm only once it reaches recent windows and stays silent there for the
  whole span; windows that were never read (a gap between a backfilled old hour and today) never count as silence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_atlassian_qradar.windows import Window

#: Key of the record in the organization's asset state store.
STATE_KEY = "last_delivery"
DEFAULT_SILENCE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class DeliveryRecord:
    """What the alarm remembers about one organization.

    :param watch_from: start of the first live window judged (None until one is).
    :param frontier: end of the newest window run so far.
    :param last_delivery_end: end of the newest window whose task delivered at least one event, if any.
    :param newest_processed_ms: the newest processedAt (epoch ms) ever delivered, if known.
    """

    watch_from: datetime | None
    frontier: datetime
    last_delivery_end: datetime | None = None
    newest_processed_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object kept in the asset state store."""
        return {
            "watch_from": self.watch_from.isoformat() if self.watch_from else None,
            "frontier": self.frontier.isoformat(),
            "last_delivery_end": self.last_delivery_end.isoformat() if self.last_delivery_end else None,
            "newest_processed_ms": self.newest_processed_ms,
        }

    @classmethod
    def from_json(cls, value: Any) -> DeliveryRecord | None:
        """Read a stored record; None for a missing or unreadable one (the alarm then starts afresh)."""
        if not isinstance(value, dict):
            return None
        try:
            last = value.get("last_delivery_end")
            newest = value.get("newest_processed_ms")
            watch_from = value.get("watch_from")
            return cls(
                watch_from=datetime.fromisoformat(watch_from) if watch_from else None,
                frontier=datetime.fromisoformat(value["frontier"]),
                last_delivery_end=datetime.fromisoformat(last) if last else None,
                newest_processed_ms=int(newest) if newest is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Verdict:
    """What :func:`assess` found for one window.

    :param record: the updated record, to store.
    :param judged: whether this window was live (newest and recent) and so judged at all.
    :param silence: window time since the last delivery (or since watching began), when judged.
    :param silent: judged and ``silence >= silence_after``.
    :param since: what silence counts from (the last delivery's window end or the start of watching), when judged.
    """

    record: DeliveryRecord
    judged: bool
    silence: timedelta | None
    silent: bool
    since: datetime | None


def _max(first: datetime | None, second: datetime) -> datetime:
    return second if first is None or second > first else first


def assess(
    previous: DeliveryRecord | None,
    window: Window,
    *,
    delivered: int,
    newest_processed_ms: int | None,
    now: datetime,
    silence_after: timedelta,
) -> Verdict:
    """Update the record with one finished window and judge whether the source is silent.

    :param previous: the stored record, or None before the first window.
    :param window: the window the task just finished.
    :param delivered: events the task delivered (its window's first read plus any late events it reconciled).
    :param newest_processed_ms: the newest processedAt among them, if known.
    :param now: the current time (aware).
    :param silence_after: the alarm span (already rounded to whole windows by the caller); must be positive.
    :return: the new record and the verdict for this window.
    """
    if previous is None:
        previous = DeliveryRecord(watch_from=None, frontier=window.end)
    live = window.end >= previous.frontier and window.end >= now - silence_after
    record = replace(
        previous,
        watch_from=previous.watch_from or (window.start if live else None),
        frontier=_max(previous.frontier, window.end),
    )
    if delivered > 0:
        newest = previous.newest_processed_ms
        if newest_processed_ms is not None and (newest is None or newest_processed_ms > newest):
            newest = newest_processed_ms
        record = replace(
            record, last_delivery_end=_max(previous.last_delivery_end, window.end), newest_processed_ms=newest
        )
    if not live:
        return Verdict(record=record, judged=False, silence=None, silent=False, since=None)
    since = _max(record.last_delivery_end, record.watch_from or window.start)
    silence = max(timedelta(0), window.end - since)
    return Verdict(record=record, judged=True, silence=silence, silent=silence >= silence_after, since=since)
