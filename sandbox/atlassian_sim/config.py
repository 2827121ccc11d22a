"""Configuration and fault switches of the Atlassian audit-log simulator."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

#: Values accepted by :attr:`Faults.rate_limit_headers`.
RATE_LIMIT_HEADER_MODES: tuple[str, ...] = ("all", "retry-after", "x-retry-after", "reset-only", "none")
#: Values accepted by :attr:`SimulatorConfig.filter_clock`.
FILTER_CLOCKS: tuple[str, ...] = ("time", "processed")


@dataclass(frozen=True)
class SimulatorConfig:
    """
    Everything that decides which events the simulator holds and how its API behaves.

    :param org_id: the only organization id the simulator knows; any other id gets 404 ADMIN-404-2.
    :param api_key: the bearer token every ``/admin/v1`` request must carry.
    :param start: first event time to generate (timezone-aware, inclusive).
    :param end: end of the event-time range to generate (timezone-aware, exclusive).
    :param events_per_hour: events generated in every full hour of the range (exact count, so totals are
        deterministic); a partly covered hour keeps only the events that fall inside the range.
    :param seed: seed of every random choice; same seed and config give identical events.
    :param hostile_ratio: fraction of generated events whose strings contain :data:`HOSTILE_STRINGS`.
    :param extra_events: explicit event dicts (full API JSON objects) served next to the generated ones.
    :param default_page_size: page size when a request sends no ``limit``.
    :param max_page_size: larger ``limit`` values are clamped silently; ``meta.page_size`` reports the clamp.
    :param refuse_page_size_over: larger ``limit`` values are refused with 400 ADMIN-400-4 instead (an API that
        does not accept the 500 peers use); None (default) refuses nothing.
    :param stream_requests_per_minute: sliding-window limit of ``/events-stream``; 0 means unlimited.
    :param events_requests_per_minute: sliding-window limit of ``/events``; 0 means unlimited.
    :param retention_days: events whose time is older than now minus this many days are never returned.
    :param processing_lag_max_seconds: ``processedAt`` is the event time plus a uniform 0..this lag.
    :param late_fraction: the long tail: this fraction of generated events gets a processing lag drawn uniformly
        from ``late_lag_seconds`` instead (e.g. 0.01 and (3600, 6 * 3600): 1% processed hours after they happened).
        0 (the default) draws nothing extra, so events are identical to a config without the tail.
    :param late_lag_seconds: (min, max) processing lag of the long-tail events.
    :param visible_only_when_processed: return an event only once wall-clock time passes its ``processedAt``
        (plus ``visibility_delay_seconds``).
    :param visibility_delay_seconds: an event becomes visible this long after its ``processedAt`` (indexing lag):
        a reader at time t does not yet see events processed in ``(t - delay, t]``.
    :param filter_clock: which clock ``from``/``to`` of ``/events-stream`` filter on: ``time`` (the event's
        ``attributes.time``) or ``processed`` (its ``processedAt``). Atlassian does not document it.
    :param empty_page_cursor: an empty stream page still returns a cursor (keep polling) instead of null.
    :param base_url_for_links: scheme and host used in page ``links.*``; default the server's own URL.
    :param prebuilt_pages: answer ``/events-stream`` requests whose parameters match a page rendered ahead of time
        by :meth:`Simulator.prebuild_stream` with that stored body (benchmarks: the simulator is then not the
        bottleneck). Auth and rate limits still apply; body faults and later visibility changes do not.
    """

    org_id: str
    api_key: str
    start: datetime
    end: datetime
    events_per_hour: int = 600
    seed: int = 1
    hostile_ratio: float = 0.0
    extra_events: tuple[dict[str, Any], ...] = ()
    default_page_size: int = 200
    max_page_size: int = 1000
    refuse_page_size_over: int | None = None
    stream_requests_per_minute: int = 50
    events_requests_per_minute: int = 10
    retention_days: int = 180
    processing_lag_max_seconds: float = 600
    late_fraction: float = 0.0
    late_lag_seconds: tuple[float, float] = (3600.0, 6 * 3600.0)
    visible_only_when_processed: bool = True
    visibility_delay_seconds: float = 0.0
    filter_clock: str = "time"
    empty_page_cursor: bool = False
    base_url_for_links: str | None = None
    prebuilt_pages: bool = False

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("SimulatorConfig.start and .end must be timezone-aware (use tzinfo=timezone.utc)")
        if self.start >= self.end:
            raise ValueError(f"SimulatorConfig.start ({self.start}) must be before end ({self.end})")
        if self.events_per_hour < 0:
            raise ValueError("SimulatorConfig.events_per_hour must be >= 0")
        if not 0.0 <= self.hostile_ratio <= 1.0:
            raise ValueError("SimulatorConfig.hostile_ratio must be between 0 and 1")
        if self.default_page_size < 1 or self.max_page_size < 1:
            raise ValueError("SimulatorConfig page sizes must be >= 1")
        if self.processing_lag_max_seconds < 0:
            raise ValueError("SimulatorConfig.processing_lag_max_seconds must be >= 0")
        if not 0.0 <= self.late_fraction <= 1.0:
            raise ValueError("SimulatorConfig.late_fraction must be between 0 and 1")
        low, high = self.late_lag_seconds
        if not 0 <= low <= high:
            raise ValueError("SimulatorConfig.late_lag_seconds must be (min, max) with 0 <= min <= max")
        if self.visibility_delay_seconds < 0:
            raise ValueError("SimulatorConfig.visibility_delay_seconds must be >= 0")
        if self.filter_clock not in FILTER_CLOCKS:
            raise ValueError(f"SimulatorConfig.filter_clock={self.filter_clock!r}; choose one of {list(FILTER_CLOCKS)}")
        # A list passed by a caller would make the frozen config hash-unsafe and mutable from outside.
        object.__setattr__(self, "extra_events", tuple(self.extra_events))


@dataclass
class Faults:
    """
    Fault switches, all off by default; mutable while the simulator serves.

    Counters (``*_burst`` and the page faults) decrement each time they fire and stop at 0. Only
    ``/admin/v1`` requests are affected, never ``/_sim``. Reads and decrements go through a lock, so tests
    may assign attributes directly (``sim.faults.rate_limit_burst = 2``) or call :meth:`update`.

    :param rate_limit_burst: the next N API requests get 429 ADMIN-429-1.
    :param rate_limit_headers: headers a forced 429 carries: ``all``, ``retry-after``, ``x-retry-after``,
        ``reset-only`` (only ``X-RateLimit-Reset``, a few seconds ahead) or ``none``.
    :param retry_after_seconds: the wait a forced 429 announces (fractions are sent as decimals).
    :param server_error_burst: the next N API requests get ``server_error_status`` with ADMIN-500-1.
    :param server_error_status: status of the forced server errors.
    :param reset_mid_body: the next N successful API responses send full headers and half the body, then
        reset the connection (SO_LINGER 0).
    :param slow_seconds: sleep this long before answering every API request.
    :param malformed_json: the next N pages are answered 200 with truncated JSON.
    :param empty_page_with_cursor: the next N pages have ``data: []`` and a cursor that resumes exactly
        where the request started.
    :param repeat_previous_page: the next N pages carry the events of the page before the requested
        position, and a cursor that resumes at the requested position (duplicates, no loss).
    :param reject_cursor: the next N requests that carry a cursor get 400 ADMIN-400-1.
    :param foreign_next_link: the next N pages that have a next page put ``links.next`` on
        ``https://evil.example.net`` and omit ``meta.next``.
    :param revoke_key_after: after N more successful API requests the key is revoked (401 from then on);
        ``0`` revokes at once, ``None`` restores the key.
    :param forbidden: the next N API requests get 403 ADMIN-403-3 (not an org admin). Not in the brief.
    """

    rate_limit_burst: int = 0
    rate_limit_headers: str = "all"
    retry_after_seconds: float = 1
    server_error_burst: int = 0
    server_error_status: int = 503
    reset_mid_body: int = 0
    slow_seconds: float = 0
    malformed_json: int = 0
    empty_page_with_cursor: int = 0
    repeat_previous_page: int = 0
    reject_cursor: int = 0
    foreign_next_link: int = 0
    revoke_key_after: int | None = None
    forbidden: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the public fault switches."""
        return tuple(f.name for f in fields(cls) if not f.name.startswith("_"))

    def take(self, name: str) -> bool:
        """Consume one shot of counter ``name``; return whether the fault fires now."""
        with self._lock:
            remaining = getattr(self, name)
            if remaining > 0:
                setattr(self, name, remaining - 1)
                return True
            return False

    def pending(self, name: str) -> bool:
        """Whether counter ``name`` would fire (without consuming it)."""
        with self._lock:
            return bool(getattr(self, name) > 0)

    def key_revoked(self) -> bool:
        """Whether :attr:`revoke_key_after` has run out."""
        with self._lock:
            return self.revoke_key_after is not None and self.revoke_key_after <= 0

    def count_success(self) -> None:
        """Count one successful API request towards :attr:`revoke_key_after`."""
        with self._lock:
            if self.revoke_key_after is not None and self.revoke_key_after > 0:
                self.revoke_key_after -= 1

    def update(self, **switches: Any) -> None:
        """
        Set several switches at once, atomically.

        :raises ValueError: on an unknown switch name or an unknown ``rate_limit_headers`` mode.
        """
        unknown = set(switches) - set(self.field_names())
        if unknown:
            raise ValueError(f"unknown fault switch(es) {sorted(unknown)}; known: {list(self.field_names())}")
        mode = switches.get("rate_limit_headers", self.rate_limit_headers)
        if mode not in RATE_LIMIT_HEADER_MODES:
            raise ValueError(f"rate_limit_headers={mode!r}; choose one of {list(RATE_LIMIT_HEADER_MODES)}")
        with self._lock:
            for name, value in switches.items():
                setattr(self, name, value)

    def clear(self) -> None:
        """Switch every fault off again."""
        defaults = Faults()
        self.update(**{name: getattr(defaults, name) for name in self.field_names()})

    def as_dict(self) -> dict[str, Any]:
        """Current switch values as a JSON-ready dict."""
        with self._lock:
            return {name: getattr(self, name) for name in self.field_names()}
