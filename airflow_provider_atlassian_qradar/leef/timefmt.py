"""Timestamps: parse an event's ISO 8601 time and render it as epoch ms and as ISO 8601 in the target zone."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=64)
def resolve_zone(time_zone: str) -> tzinfo:
    """Return the tzinfo of an IANA zone name; ValueError names the zone if this system does not know it."""
    if time_zone in ("UTC", "Etc/UTC"):
        return timezone.utc  # same rendering (+00:00), cheaper conversions than ZoneInfo("UTC")
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"time_zone {time_zone!r} is not an IANA time zone name known to this system "
            "(e.g. 'UTC', 'Europe/Berlin'); install tzdata if the system has no zoneinfo database"
        ) from error


_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_ONE_MS = timedelta(milliseconds=1)
# 13-digit epoch milliseconds (2001-09-09 .. 2286-11-20): QRadar reads them without devTimeFormat.
_DEVTIME_MIN = 10**12
_DEVTIME_MAX = 10**13
_FRACTION_RE = re.compile(r"(\.\d+)?(Z|[+-]\d\d:?\d\d)?\Z", re.IGNORECASE)


def _parse_time_slow(text: str) -> datetime:
    """Python 3.10's fromisoformat rejects 'Z' and fractions other than 3 or 6 digits; normalise them."""
    match = _FRACTION_RE.search(text)
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError(text)
    fraction = (match.group(1) or "")[:7].ljust(7, "0") if match.group(1) else ""
    offset = match.group(2) or ""
    if offset.upper() == "Z":
        offset = "+00:00"
    return datetime.fromisoformat(text[: match.start()] + fraction + offset)


# Per event, two timestamps are parsed and rendered in the target zone. datetime arithmetic plus
# isoformat(timespec=...) costs ~2 us each, so the UTC minute is cached, keyed by the text "YYYY-MM-DDTHH:MM"
# of a "Z" timestamp (the Atlassian form) and by epoch minute otherwise: ~0.4 us per timestamp.
_SECONDS = tuple(f"{second:02d}." for second in range(60))
_MILLIS = tuple(f"{milli:03d}" for milli in range(1000))
_MINUTE_CACHE_MAX = 8192


class _MinuteEntry:
    """One UTC minute: its epoch ms and its rendering in one zone up to the seconds."""

    __slots__ = ("epoch_ms", "local_prefix", "offset_suffix")

    def __init__(self, epoch_ms: int, zone: tzinfo) -> None:
        self.epoch_ms = epoch_ms
        local = datetime.fromtimestamp(epoch_ms // 1000, zone)
        offset = local.utcoffset()
        if offset is None or offset.microseconds or offset.seconds % 60:
            # A seconds offset (local mean time before ~1900): the fast rendering would be wrong.
            self.local_prefix = self.offset_suffix = ""
        else:
            iso = local.isoformat()  # YYYY-MM-DDTHH:MM:00+HH:MM
            self.local_prefix, self.offset_suffix = iso[:17], iso[19:]


_text_minutes: dict[tzinfo, dict[str, _MinuteEntry]] = {}
_epoch_minutes: dict[tzinfo, dict[int, _MinuteEntry]] = {}


def _epoch_ms(moment: datetime) -> int | None:
    """Epoch ms of an aware ``moment``, or None outside the 13-digit range devTime allows."""
    try:
        epoch_ms: int = (moment - _EPOCH) // _ONE_MS
    except OverflowError:
        return None
    return epoch_ms if _DEVTIME_MIN <= epoch_ms < _DEVTIME_MAX else None


def parse_time(value: Any, zone: tzinfo) -> tuple[int, str] | None:
    """Return (epoch ms, ISO 8601 with ms and offset in ``zone``) or None if ``value`` is no usable time."""
    if value.__class__ is not str:
        return None
    try:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = _parse_time_slow(value)
    except (ValueError, OverflowError):
        return None
    second = moment.second
    milli = moment.microsecond // 1000
    if value[-1:] == "Z" and value[16:17] == ":":
        # value[:16] is date, hour and minute in UTC; value[16:] only seconds, fraction and "Z".
        cache = _text_minutes.get(zone)
        if cache is None:
            cache = _text_minutes[zone] = {}
        entry = cache.get(value[:16])
        if entry is None:
            if len(cache) >= _MINUTE_CACHE_MAX:
                cache.clear()
            epoch_ms = _epoch_ms(moment)
            if epoch_ms is None:
                return None
            entry = cache[value[:16]] = _MinuteEntry(epoch_ms - second * 1000 - milli, zone)
        else:
            epoch_ms = entry.epoch_ms + second * 1000 + milli
    else:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_UTC)
        epoch_ms = _epoch_ms(moment)
        if epoch_ms is None:
            return None
        minute = epoch_ms // 60000
        minutes = _epoch_minutes.get(zone)
        if minutes is None:
            minutes = _epoch_minutes[zone] = {}
        entry = minutes.get(minute)
        if entry is None:
            if len(minutes) >= _MINUTE_CACHE_MAX:
                minutes.clear()
            entry = minutes[minute] = _MinuteEntry(minute * 60000, zone)
        # The seconds of the UTC minute are the local seconds: offsets are whole minutes.
        second, milli = divmod(epoch_ms - minute * 60000, 1000)
    if not _DEVTIME_MIN <= epoch_ms < _DEVTIME_MAX:
        return None
    if not entry.local_prefix:
        return epoch_ms, moment.astimezone(zone).isoformat(timespec="milliseconds")
    return epoch_ms, entry.local_prefix + _SECONDS[second] + _MILLIS[milli] + entry.offset_suffix
