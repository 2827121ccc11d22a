"""The compact per-event index (times, id, flags), ISO 8601 time text, and the generated events' index."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sandbox.atlassian_sim.config import SimulatorConfig

_HOUR_US = 3_600_000_000
PRECISION_MICROS = 0
PRECISION_MILLIS = 1
PRECISION_SECONDS = 2
PRECISION_MASK = 3
FLAG_HOSTILE = 4
FLAG_EXPLICIT = 8


class IndexEntry(NamedTuple):
    """Compact record of one event: enough to sort, filter by time and materialise it."""

    time_us: int
    processed_ms: int
    event_id: str
    flags: int

    @property
    def time_ms(self) -> int:
        """Event time floored to the millisecond (the clock ``from``/``to`` filter on)."""
        return self.time_us // 1000


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} is naive; pass a timezone-aware datetime (tzinfo=timezone.utc)")
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_time(epoch_us: int, precision: int) -> str:
    """ISO 8601 UTC text with ``Z``, with microsecond, millisecond or no fraction."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if precision == PRECISION_MICROS:
        return f"{base}.{micros:06d}Z"
    if precision == PRECISION_MILLIS:
        return f"{base}.{micros // 1000:03d}Z"
    return f"{base}Z"


_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str) -> tuple[int, int]:
    """
    Parse an API timestamp leniently into ``(epoch_us, precision)``.

    :raises ValueError: when ``text`` is not an ISO 8601 date-time.
    """
    match = _ISO_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz)
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    if not fraction:
        precision = PRECISION_SECONDS
    elif len(fraction) <= 3:
        precision = PRECISION_MILLIS
    else:
        precision = PRECISION_MICROS
    return to_epoch_us(moment) + micros, precision


def iter_generated_index(config: SimulatorConfig) -> Iterator[IndexEntry]:
    """Yield the index entries of the generated events, hour by hour."""
    start_us, end_us = to_epoch_us(config.start), to_epoch_us(config.end)
    lag_max_ms = int(config.processing_lag_max_seconds * 1000)
    first_hour = start_us // _HOUR_US
    last_hour = -(-end_us // _HOUR_US)
    for hour in range(first_hour, last_hour):
        # Seeding by the absolute hour makes an hour's events identical whatever range contains it.
        rng = random.Random(f"atlassian-sim/{config.seed}/{hour}")
        hour_us = hour * _HOUR_US
        for _ in range(config.events_per_hour):
            # Always draw the same values in the same order, so ids and times do not depend on hostile_ratio.
            offset_us = rng.randrange(_HOUR_US)
            precision = rng.randrange(3)
            lag_ms = rng.randint(0, lag_max_ms)
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            hostile = rng.random() < config.hostile_ratio
            if config.late_fraction and rng.random() < config.late_fraction:
                # Drawn only when the tail is on, so a config without it keeps its events bit for bit.
                lag_ms = int(rng.uniform(*config.late_lag_seconds) * 1000)
            time_us = hour_us + offset_us
            if precision == PRECISION_MILLIS:
                time_us -= time_us % 1000
            elif precision == PRECISION_SECONDS:
                time_us -= time_us % 1_000_000
            if not start_us <= time_us < end_us:
                continue
            processed_ms = -(-time_us // 1000) + lag_ms
            yield IndexEntry(time_us, processed_ms, event_id, precision | (FLAG_HOSTILE if hostile else 0))
