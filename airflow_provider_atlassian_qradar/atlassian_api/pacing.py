"""How fast to ask: even pacing per API path, and how long to wait before a retry. Pure code."""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import requests

from airflow_provider_atlassian_qradar.connection_fields import ATLASSIAN_EXTRAS
from airflow_provider_atlassian_qradar.windows import parse_timestamp_ms

STREAM = "events-stream"
EVENTS = "events"
_EXTRA_DEFAULTS = {extra.name: extra.default for extra in ATLASSIAN_EXTRAS}
# Documented per-path limits: 50/min on events-stream (per Elastic's README), 10/min on /events (Atlassian).
DEFAULT_REQUESTS_PER_MINUTE = {
    STREAM: float(_EXTRA_DEFAULTS["stream_requests_per_minute"]),
    EVENTS: float(_EXTRA_DEFAULTS["events_requests_per_minute"]),
}
MAX_RATE_LIMIT_WAIT_SECONDS = 300.0


@dataclass
class RequestPacer:
    """Space requests evenly: at most ``per_minute`` a minute, one every ``60 / per_minute`` seconds.

    The first request waits one interval from ``claimed_at``, the moment the caller's share began (its task's
    start). A task that takes a slot just freed by another therefore never requests sooner than one interval
    after that task's last request, so parallel shares add up to at most the limit with no hold at the end,
    and the task's own start-up (process, DAG parse) runs inside that first interval instead of adding to it.
    """

    per_minute: float
    claimed_at: float = field(default_factory=lambda: time.monotonic())
    next_at: float = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.next_at = self.claimed_at + self.interval

    @property
    def interval(self) -> float:
        # The server counts requests in any 60 s; evenly spaced requests at exactly 60/p s can put ceil(p) of
        # them in one such span (13 for a 12.5 share). Spacing at 60/floor(p), plus 2% for timing jitter,
        # keeps every span at floor(p) or fewer, so the shares of parallel windows never add up past the limit.
        # A share under one a minute (more slots than the path's limit) gets its true spacing, 60/p s.
        if self.per_minute <= 0:
            return 0.0
        whole = math.floor(self.per_minute) if self.per_minute >= 1 else self.per_minute
        return 60.0 / whole * 1.02

    def wait(self) -> float:
        """Sleep until the next request is allowed; return the seconds slept."""
        if self.per_minute <= 0:
            return 0.0
        with self.lock:
            now = time.monotonic()
            pause = max(0.0, self.next_at - now)
            if pause:
                time.sleep(pause)
            self.next_at = max(now, self.next_at) + self.interval
            return pause


def retry_wait_seconds(response: requests.Response) -> float | None:
    """Read how long a 429 asks us to wait: Retry-After, then X-Retry-After, then X-RateLimit-Reset.

    A value that is negative, not a number, or a moment already past says nothing useful: it is skipped, and
    with no usable header the caller backs off exponentially (None).
    """
    for header in ("Retry-After", "X-Retry-After"):
        value = (response.headers.get(header) or "").strip()
        if not value:
            continue
        seconds: float | None
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until_http_date(value) if header == "Retry-After" else None
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            return seconds
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            reset_ms = parse_timestamp_ms(reset)
        except ValueError:
            return None
        seconds = reset_ms / 1000.0 - time.time()
        return seconds if seconds > 0 else None
    return None


def _seconds_until_http_date(value: str) -> float | None:
    """Seconds until an HTTP date (``Wed, 02 Dec 2026 10:00:00 GMT``); None if unreadable or past."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:  # "-0000" means UTC with no zone information: parsed as naive
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = (moment - datetime.now(timezone.utc)).total_seconds()
    return seconds if seconds > 0 else None


def backoff_seconds(attempt_number: int, server_wait: float | None) -> float:
    """The wait before retry ``attempt_number``: the server's hint (capped, jittered), else exponential backoff.

    :param attempt_number: the attempt that just failed, from 1.
    :param server_wait: what a 429 asked for (see :func:`retry_wait_seconds`), or None.
    """
    if server_wait is not None:
        return min(server_wait, MAX_RATE_LIMIT_WAIT_SECONDS) + random.uniform(0, 0.25)
    # No hint from the server: exponential backoff with full jitter, 1 s to 60 s.
    ceiling = min(60.0, 2.0 ** (attempt_number - 1))
    return random.uniform(ceiling / 2, ceiling)
