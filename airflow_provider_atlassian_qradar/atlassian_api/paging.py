"""The walk of one window, page by page: cursors, repeats, loop guards and clock evidence. Pure code."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from airflow_provider_atlassian_qradar.atlassian_api.errors import AtlassianApiError
from airflow_provider_atlassian_qradar.atlassian_api.filters import EventFilters
from airflow_provider_atlassian_qradar.atlassian_api.guard import format_origin, origin
from airflow_provider_atlassian_qradar.atlassian_api.pacing import EVENTS, STREAM
from airflow_provider_atlassian_qradar.windows import ClockEvidence, Window, parse_timestamp_ms

# How many recent event ids are remembered to drop repeats. Repeats happen at page boundaries, so a bounded
# memory keeps a 1M-event window at constant RSS; a whole-window restart skips by position instead.
RECENT_IDS_REMEMBERED = 100_000
# A walk fails (retryably) after this many pages in a row that no clock explains or whose cursor does not move:
# a server in a loop must not spend the organization's whole API budget.
MAX_ANOMALOUS_PAGES = 5
#: The page size used when the API refuses a larger one (Atlassian's documented default).
FALLBACK_PAGE_SIZE = 200


@dataclass
class FetchStats:
    """Counters of one hook's API work, reported in the operator's summary."""

    requests: int = 0
    duplicates_skipped: int = 0
    rate_limited: int = 0
    retries: int = 0
    #: seconds spent waiting for the pacers
    pacing_seconds: float = 0.0
    restarts: int = 0


@dataclass
class Page:
    """One page of a window walk.

    :param events: the new events of this page (repeats and out-of-window events already removed).
    :param next_cursor: the cursor of the following page, or None at the end.
    :param position: how many events of the window were yielded before this page.
    """

    events: list[dict[str, Any]]
    next_cursor: str | None
    position: int
    #: each event's time in epoch ms (None when unreadable), parsed once for the syslog header
    times_ms: list[int | None] = field(default_factory=list)
    #: each event's processedAt in epoch ms (None when absent, as on ``/events``, or unreadable)
    processed_ms: list[int | None] = field(default_factory=list)


class _RecentIds:
    """A bounded set of recently seen event ids (FIFO eviction)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._order: deque[str] = deque()
        self._members: set[str] = set()

    def add(self, event_id: str) -> bool:
        """Remember an id; return False if it was already there."""
        if event_id in self._members:
            return False
        self._members.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self._capacity:
            self._members.discard(self._order.popleft())
        return True


class WarningLog(Protocol):
    """A logger as far as this package uses it (a :class:`logging.Logger` or Airflow's task logger)."""

    def warning(self, msg: str, /, *args: Any) -> None:
        """Log a warning, formatted lazily."""


class PageSource(Protocol):
    """What a walk needs from the client: one GET, the page size (lowered on refusal), counters and a logger."""

    page_size: int
    stats: FetchStats
    log: WarningLog

    @property
    def base_url(self) -> str: ...

    def get_json(self, path: str, params: Sequence[tuple[str, Any]]) -> dict[str, Any]: ...


def walk_window(
    source: PageSource,
    window: Window,
    filters: EventFilters,
    *,
    evidence: ClockEvidence,
    resume_cursor: str | None = None,
    skip: int = 0,
    newest_first: bool = False,
) -> Generator[Page, None, None]:
    """Yield the pages of ``window``, each event once; see ``AtlassianAuditLogHook.iter_pages`` for the arguments.

    The API's own ``from``/``to`` filter decides what belongs to the window, whichever clock it filters on; no
    returned event is dropped for a clock, repeats are. ``evidence`` collects what the events say about that clock.
    """
    filter_params = filters.params()
    path_kind = EVENTS if filters else STREAM
    order = [("sortOrder", "desc")] if newest_first and path_kind == STREAM else []
    recent = _RecentIds(RECENT_IDS_REMEMBERED)
    position = skip if resume_cursor else 0
    to_drop = 0 if resume_cursor else skip
    cursor = resume_cursor
    restarts_left = 2
    empty_pages = stale_pages = unexplained_pages = stuck_pages = 0
    while True:
        params: list[tuple[str, Any]] = [
            ("from", window.start_ms),
            ("to", window.end_ms - 1),
            ("limit", source.page_size),
            *order,
            *filter_params,
        ]
        if cursor:
            params.append(("cursor", cursor))
        try:
            body = source.get_json(path_kind, params)
        except AtlassianApiError as err:
            if err.status == 400 and not cursor and source.page_size > FALLBACK_PAGE_SIZE:
                # Peers document pages of up to 500; an API that refuses the size gets the documented default.
                source.log.warning(
                    "Atlassian refused limit=%d (%s); reading with limit=%d from now on",
                    source.page_size,
                    err.code or err.status,
                    FALLBACK_PAGE_SIZE,
                )
                source.page_size = FALLBACK_PAGE_SIZE
                continue
            if not (cursor and err.status == 400 and restarts_left):
                raise
            # The server forgot or rejected our cursor: walk the window again, dropping what was yielded.
            restarts_left -= 1
            source.stats.restarts += 1
            source.log.warning(
                "Atlassian rejected the page cursor (%s); re-reading the window from its start and "
                "skipping the %d events already yielded",
                err.code or err.status,
                position,
            )
            cursor = None
            if position > RECENT_IDS_REMEMBERED:
                # Too many to recognise by id: rely on the stream's stable order and skip by position.
                recent, to_drop = _RecentIds(RECENT_IDS_REMEMBERED), position
            continue
        data = body.get("data") or []
        if not isinstance(data, list):
            raise AtlassianApiError(f"Atlassian returned 'data' of type {type(data).__name__}, not a list")
        fresh: list[dict[str, Any]] = []
        times: list[int | None] = []
        processed: list[int | None] = []
        repeats_before = source.stats.duplicates_skipped
        explained = 0
        for event in data:
            is_new, time_ms, processed_ms = _accept(event, recent, source)
            explained += evidence.add(window, time_ms, processed_ms)
            if not is_new:
                continue
            if to_drop:
                to_drop -= 1
                continue
            fresh.append(event)
            times.append(time_ms)
            processed.append(processed_ms)
        next_cursor = _next_cursor(body, source.base_url)
        # Loop guards, independent of the clock: pages no clock explains, and a cursor that does not move.
        unexplained_pages = unexplained_pages + 1 if data and not explained else 0
        stuck_pages = stuck_pages + 1 if fresh and cursor and next_cursor == cursor else 0
        if max(unexplained_pages, stuck_pages) > MAX_ANOMALOUS_PAGES:
            raise AtlassianApiError(
                f"Atlassian kept serving pages for window {window} that "
                + (
                    "hold only events whose time and processedAt are both outside the window"
                    if unexplained_pages > MAX_ANOMALOUS_PAGES
                    else "repeat the cursor they were asked with"
                )
                + f" ({MAX_ANOMALOUS_PAGES + 1} pages in a row): the API is looping. Stopped to save the rate "
                "limit budget; the task retry will read the window again.",
                code="looping",
            )
        yield Page(events=fresh, next_cursor=next_cursor, position=position, times_ms=times, processed_ms=processed)
        position += len(fresh)
        if not next_cursor:
            return
        if not data:
            # An empty page normally ends the stream, but a server hiccup can serve one mid-walk with a
            # cursor that goes on. Asking once more costs one request and can only find events, never lose any.
            empty_pages += 1
            if empty_pages > 1:
                return
        elif source.stats.duplicates_skipped > repeats_before:
            # A page that repeats events is a server anomaly, so its length says nothing about the end:
            # follow the cursor, but not forever if it never moves past what we have seen.
            stale_pages = stale_pages + 1 if not fresh else 0
            if stale_pages > 5:
                raise AtlassianApiError(
                    "Atlassian kept serving pages of events already delivered (the cursor does not advance); "
                    "the task retry will read the window again"
                )
            empty_pages = 0
        else:
            empty_pages = stale_pages = 0
            if _is_last_page(body, len(data)):
                return
        cursor = next_cursor


def _accept(event: Any, recent: _RecentIds, source: PageSource) -> tuple[bool, int | None, int | None]:
    """Tell whether an event is new (not a repeat); return (new, time in ms, processedAt in ms).

    Never judges by time: the server's ``from``/``to`` decide the window (see :func:`walk_window`).
    """
    if not isinstance(event, dict):
        raise AtlassianApiError(f"Atlassian returned an event that is not an object: {type(event).__name__}")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise AtlassianApiError(
            f"Atlassian returned an event without an 'id' ({_event_time(event)}); cannot deliver it exactly once",
            permanent=True,
        )
    attributes = event.get("attributes") or {}
    time_ms = _event_ms(source.log, event_id, attributes, "time")
    processed_ms = _event_ms(source.log, event_id, attributes, "processedAt")
    if not recent.add(event_id):
        source.stats.duplicates_skipped += 1
        return False, time_ms, processed_ms
    return True, time_ms, processed_ms


def _event_ms(log: WarningLog, event_id: str, attributes: Any, key: str) -> int | None:
    raw = attributes.get(key) if isinstance(attributes, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return parse_timestamp_ms(raw)
    except ValueError:
        log.warning("event %s has an unreadable %s %r; delivering it anyway", event_id, key, raw)
        return None


def _is_last_page(body: dict[str, Any], count: int) -> bool:
    # A short page ends the walk only when the server tells us the page size it used: a server that
    # clamps `limit` silently would otherwise make us stop early and lose events.
    meta = body.get("meta") or {}
    page_size = meta.get("page_size") if isinstance(meta, dict) else None
    return isinstance(page_size, int) and page_size > 0 and count < page_size


def _next_cursor(body: dict[str, Any], base_url: str) -> str | None:
    """Return the next cursor from ``meta.next`` (token) or ``links.next`` (URL or token)."""
    meta = body.get("meta") or {}
    token = meta.get("next") if isinstance(meta, dict) else None
    if isinstance(token, str) and token:
        return token
    links = body.get("links") or {}
    link = links.get("next") if isinstance(links, dict) else None
    if not isinstance(link, str) or not link:
        return None
    if "://" not in link and not link.startswith("/"):
        return link  # a bare token
    parts = urlsplit(link)
    # Origins compare normalised: https://API.atlassian.com:443 is https://api.atlassian.com.
    theirs, ours = origin(link), origin(base_url)
    if parts.netloc and theirs != ours:
        raise AtlassianApiError(
            f"refusing to follow links.next to {format_origin(theirs)}: it is not the configured API "
            f"host {format_origin(ours)}, and the bearer token must not be sent elsewhere. If the API "
            "moved, update the connection host.",
            code="foreign-link",
            permanent=True,
        )
    cursors = parse_qs(parts.query).get("cursor")
    if not cursors:
        raise AtlassianApiError(f"links.next has no cursor parameter: {parts.path}")
    return cursors[0]


def _event_time(event: dict[str, Any]) -> str:
    """Where an event without an id sits, for the error message: its time, if it has one."""
    attributes = event.get("attributes")
    moment = attributes.get("time") if isinstance(attributes, dict) else None
    return f"time {str(moment)[:40]!r}" if moment else "no time either"
