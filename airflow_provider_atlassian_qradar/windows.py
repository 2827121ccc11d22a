"""Time-window arithmetic and lenient timestamp parsing. Pure code: no Airflow import.

A window is half-open, ``[start, end)``. The Atlassian API takes inclusive epoch-millisecond bounds, so a window
maps to ``from = start_ms`` and ``to = end_ms - 1``; adjacent windows then tile time with no gap and no overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property

RETENTION = timedelta(days=180)

#: The server filters ``from``/``to`` on the event's ``attributes.time``.
CLOCK_TIME = "time"
#: The server filters ``from``/``to`` on the event's ``processedAt``.
CLOCK_PROCESSED = "processed"
#: The window's data does not tell (no event near a boundary), or contradicts itself.
CLOCK_UNKNOWN = "unknown"

# 2021-04-03T06:12:11.117451Z, 2021-04-01T22:55:19.008Z, 2021-04-01T22:55:18Z, ...+02:00, lower-case t/z too.
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_epoch_ms(moment: datetime) -> int:
    """Return a timezone-aware datetime as integer epoch milliseconds (floored).

    :param moment: an aware datetime; a naive one is refused because its meaning depends on the machine.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"naive datetime {moment.isoformat()} has no time zone: pass an aware datetime, "
            "e.g. pendulum.datetime(..., tz='UTC')"
        )
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_epoch_ms(epoch_ms: int) -> datetime:
    """Return epoch milliseconds as an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def parse_timestamp_ms(text: str) -> int:
    """Parse an Atlassian timestamp leniently and return epoch milliseconds (floored).

    Accepts microseconds, milliseconds or no fraction, and ``Z``, an offset, or nothing (taken as UTC).

    :param text: the timestamp as the API sent it.
    :raises ValueError: when the text is not an ISO 8601 date-time.
    """
    match = _TIMESTAMP.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        moment = moment - offset if sign == "+" else moment + offset
    return to_epoch_ms(moment) + millis


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` of audit events."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start_ms, end_ms = to_epoch_ms(self.start), to_epoch_ms(self.end)
        if end_ms <= start_ms:
            raise ValueError(
                f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}: "
                "a window is [start, end) and must be at least 1 ms long"
            )

    @cached_property
    def start_ms(self) -> int:
        """Inclusive lower bound in epoch ms (the API's ``from``)."""
        return to_epoch_ms(self.start)

    @cached_property
    def end_ms(self) -> int:
        """Exclusive upper bound in epoch ms; the API's inclusive ``to`` is ``end_ms - 1``."""
        return to_epoch_ms(self.end)

    def contains_ms(self, epoch_ms: int) -> bool:
        """Tell whether an event time falls in the window."""
        return self.start_ms <= epoch_ms < self.end_ms

    def label(self) -> str:
        """Return a compact, filesystem-safe label such as ``20261124T0400Z-20261124T0500Z``."""
        fmt = "%Y%m%dT%H%M%SZ"
        utc = timezone.utc
        return f"{self.start.astimezone(utc).strftime(fmt)}-{self.end.astimezone(utc).strftime(fmt)}"

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


@dataclass
class ClockEvidence:
    """What a window's returned events say about the clock the server filtered ``from``/``to`` on.

    An event whose ``time`` is outside the window but whose ``processedAt`` is inside can only have been returned
    by a server filtering on processing time, and the reverse only by one filtering on event time. Events near
    a window boundary (a processing lag that crosses it) are enough to tell; a quiet window may not tell.
    """

    #: events with ``time`` outside the window and ``processedAt`` inside: evidence for ``processed``
    time_outside: int = 0
    #: events with ``processedAt`` outside the window and ``time`` inside: evidence for ``time``
    processed_outside: int = 0
    #: events with both clocks outside the window (no hypothesis explains them; delivered anyway)
    both_outside: int = 0

    def add(self, window: Window, time_ms: int | None, processed_ms: int | None) -> bool:
        """Count one returned event; return False when neither of its known clocks is inside the window."""
        time_in = None if time_ms is None else window.contains_ms(time_ms)
        processed_in = None if processed_ms is None else window.contains_ms(processed_ms)
        if time_in is False and processed_in is True:
            self.time_outside += 1
        elif processed_in is False and time_in is True:
            self.processed_outside += 1
        elif time_in is False and processed_in is not True:
            self.both_outside += 1
            return False
        elif processed_in is False and time_in is None:
            self.both_outside += 1
            return False
        return True

    @property
    def clock(self) -> str:
        """``time``, ``processed``, or ``unknown`` when there is no evidence or it contradicts itself."""
        if self.time_outside and not self.processed_outside:
            return CLOCK_PROCESSED
        if self.processed_outside and not self.time_outside:
            return CLOCK_TIME
        return CLOCK_UNKNOWN
