"""Hook for the Atlassian Cloud Organizations REST API audit log (``/admin/v1/orgs/{orgId}/events...``).

Reads every event of a half-open time window ``[start, end)`` exactly once, page by page, within the API's
per-path rate limits, and survives 429s, 5xx bursts, connection resets and timeouts.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
import tenacity
import urllib3
from airflow.sdk import BaseHook

from airflow_provider_atlassian_qradar.connection_fields import (
    ATLASSIAN_EXTRAS,
    ATLASSIAN_FORM,
    DEFAULT_ATLASSIAN_BASE_URL,
    ConnectionConfigError,
    read_extras,
)
from airflow_provider_atlassian_qradar.http_guard import (
    DeadlineAdapter,
    RequestDeadline,
    ResponseTooLarge,
    SecretScrubber,
    UnsupportedEncoding,
    format_origin,
    is_loopback_host,
    origin,
    read_capped_body,
)
from airflow_provider_atlassian_qradar.windows import ClockEvidence, Window, parse_timestamp_ms

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = DEFAULT_ATLASSIAN_BASE_URL
STREAM = "events-stream"
EVENTS = "events"
_EXTRA_DEFAULTS = {field.name: field.default for field in ATLASSIAN_EXTRAS}
# Documented per-path limits: 50/min on events-stream (per Elastic's README), 10/min on /events (Atlassian).
DEFAULT_REQUESTS_PER_MINUTE = {
    STREAM: float(_EXTRA_DEFAULTS["stream_requests_per_minute"]),
    EVENTS: float(_EXTRA_DEFAULTS["events_requests_per_minute"]),
}
MAX_RATE_LIMIT_WAIT_SECONDS = 300.0
# How many recent event ids are remembered to drop repeats. Repeats happen at page boundaries, so a bounded
# memory keeps a 1M-event window at constant RSS; a whole-window restart skips by position instead.
RECENT_IDS_REMEMBERED = 100_000
#: Total seconds one API request may take, headers and body together (extra ``request_deadline``).
DEFAULT_REQUEST_DEADLINE_SECONDS = float(_EXTRA_DEFAULTS["request_deadline"])
#: Largest decoded response body accepted (extra ``max_response_bytes``); a page of 1,000 events is about 2 MB.
DEFAULT_MAX_RESPONSE_BYTES = int(_EXTRA_DEFAULTS["max_response_bytes"])
#: Error bodies are read only this far: they are shown in messages, never parsed for data.
_MAX_ERROR_BODY_BYTES = 64 * 1024
#: Atlassian organization ids are UUIDs; allow any id of letters, digits, dashes and underscores.
_ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_HTTP_SCHEMES = ("https", "http")
# A walk fails (retryably) after this many pages in a row that no clock explains or whose cursor does not move:
# a server in a loop must not spend the organization's whole API budget.
MAX_ANOMALOUS_PAGES = 5
#: The page size used when the API refuses a larger one (Atlassian's documented default).
FALLBACK_PAGE_SIZE = 200


class AtlassianApiError(Exception):
    """The Atlassian API refused a request, or the connection is misconfigured. The text says what to fix.

    :param permanent: retrying cannot help until someone changes something (a configuration error, a protocol
        violation, HTTP 400/401/403/404); the operator then fails the task at once. Default: true for those
        statuses, false otherwise.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, permanent: bool | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.permanent = status in (400, 401, 403, 404) if permanent is None else permanent


class _RetryableResponse(Exception):
    """A 429 or 5xx answer, carrying how long the server asked us to wait (if it said)."""

    def __init__(self, status: int, wait_seconds: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.wait_seconds = wait_seconds


class _MalformedBody(ValueError):
    """A 2xx body that is not a JSON object (truncated, garbled): retried like a network error."""


class _DeadlineExceeded(requests.Timeout):
    """The request did not complete within its total deadline (a server trickling its answer)."""


@dataclass
class FetchStats:
    """Counters of one hook's API work, reported in the operator's summary."""

    requests: int = 0
    pages: int = 0
    events: int = 0
    duplicates_skipped: int = 0
    rate_limited: int = 0
    retries: int = 0
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


@dataclass
class _RequestPacer:
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
        if self.per_minute <= 0:
            return 0.0
        return 60.0 / max(1, math.floor(self.per_minute)) * 1.02

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


def _retry_wait_seconds(response: requests.Response) -> float | None:
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


def _error_detail(response: requests.Response, body: bytes) -> tuple[str | None, str]:
    """Return (ADMIN-… code, human text) from an Atlassian error body, tolerating any body."""
    fallback = response.reason or f"HTTP {response.status_code}"
    try:
        errors = json.loads(body).get("errors") or []
        first = errors[0] if errors else {}
        code = first.get("code")
        text = " ".join(str(first.get(k)) for k in ("title", "detail") if first.get(k))
        return (code if isinstance(code, str) else None), (text or fallback)[:500]
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return None, fallback[:500]


def _check_api_key(key: str, conn_id: str) -> None:
    """Refuse a key with whitespace or control characters before any request (e.g. a newline pasted from a file).

    requests would refuse the header with an error that quotes it, and Airflow's masker matches only the exact
    key: the message would show the key in clear text. The message names the field, never the key.
    """
    if all(0x21 <= ord(char) <= 0x7E for char in key):
        return
    if key != key.strip():
        problem = "leading or trailing whitespace (often a newline pasted from a file)"
    elif any(char.isspace() for char in key):
        problem = "whitespace inside it"
    elif any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        problem = "control characters"
    else:
        problem = "non-ASCII characters"
    raise ConnectionConfigError(
        f"connection {conn_id!r}: the API key (password field) has {problem}; an organization API key is a "
        "single line of printable ASCII: paste it again without them",
    )


def _check_org_id(org_id: str, conn_id: str) -> None:
    """Refuse an Organization ID that would change the request path (``../``, ``?``, ``#``, ``/``, spaces)."""
    if _ORG_ID.fullmatch(org_id):
        return
    raise ConnectionConfigError(
        f"connection {conn_id!r}: the Organization ID (login field) {org_id[:80]!r} is not an organization id: "
        "use the id shown in admin.atlassian.com > Settings > API keys (letters, digits and dashes, e.g. "
        "a UUID); characters such as '/', '?', '#' or '..' are not allowed",
    )


def _check_base_url(base_url: str, conn_id: str, allow_insecure_http: bool) -> None:
    """Accept https, and http only to a loopback host or with the explicit ``allow_insecure_http`` opt-in."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in _HTTP_SCHEMES or not host:
        raise ConnectionConfigError(
            f"connection {conn_id!r}: the API base URL (host field) {format_origin(origin(base_url))!r} is not an "
            f"http(s) URL: use {DEFAULT_BASE_URL} (or leave the host empty)",
        )
    if scheme == "https" or is_loopback_host(host):
        return
    if not allow_insecure_http:
        raise ConnectionConfigError(
            f"connection {conn_id!r}: the API base URL {format_origin(origin(base_url))} is plain http to a host "
            "that is not loopback, so the API key would cross the network unencrypted: use https, or set the "
            'connection extra "allow_insecure_http": true if you really mean it (e.g. a TLS-terminating proxy on '
            "a trusted link)",
        )
    log.warning(
        "connection %r: sending the Atlassian API key over plain http to %s (allow_insecure_http is true): "
        "anyone on the path can read it",
        conn_id,
        format_origin(origin(base_url)),
    )


class AtlassianAuditLogHook(BaseHook):
    """Read the Atlassian Cloud organization audit log.

    Connection (type ``atlassian_admin``): ``host`` = API base URL (default ``https://api.atlassian.com``),
    ``login`` = Organization ID, ``password`` = organization API key (sent as ``Authorization: Bearer``).
    Extras: ``page_size`` (default 500; 200 if the API refuses it), ``stream_requests_per_minute`` (default 50),
    ``events_requests_per_minute`` (default 10), ``timeout`` seconds per read (default 60), ``max_retries``
    (default 8), ``request_deadline`` seconds per request in total (default 180), ``max_response_bytes`` (decoded,
    default 32 MiB), ``allow_insecure_http`` (default false: plain http only to loopback);
    declared once in :data:`~airflow_provider_atlassian_qradar.connection_fields.ATLASSIAN_EXTRAS`. An extra
    that is missing, ``null`` (what the Airflow UI saves for an empty field) or empty takes its default.

    :param atlassian_conn_id: the Airflow connection id.
    :param page_size: events per request; overrides the connection's ``page_size``.
    :param requests_per_minute: pacing per path, e.g. ``{"events-stream": 25}``; overrides the connection.
    :param share_claimed_at: when this caller's share of the budget began (epoch seconds; default: now): the
        first request of each path waits one pacing interval from then. The operator passes its task's start.
    """

    conn_name_attr = "atlassian_conn_id"
    default_conn_name = "atlassian_admin_default"
    conn_type = "atlassian_admin"
    hook_name = "Atlassian Organization Admin API"
    # Tests swap this to record the waits instead of sleeping through them.
    _sleep = staticmethod(time.sleep)

    def __init__(
        self,
        atlassian_conn_id: str = default_conn_name,
        *,
        page_size: int | None = None,
        requests_per_minute: Mapping[str, float] | None = None,
        share_claimed_at: float | None = None,
    ) -> None:
        super().__init__()
        # Wall-clock (epoch s) start of this caller's share of the budget, as a point on the monotonic clock.
        claimed = time.time() if share_claimed_at is None else share_claimed_at
        self._share_claimed_at = time.monotonic() - (time.time() - claimed)
        self.atlassian_conn_id = atlassian_conn_id
        self._page_size_override = page_size
        self._rpm_override = dict(requests_per_minute or {})
        self.stats = FetchStats()
        self._accepted_page_size: int | None = None
        #: what the events of the latest walk say about the server's filter clock (reset by each walk)
        self.clock_evidence = ClockEvidence()
        self._event_actions: dict[str, dict[str, Any]] | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the connection form for Airflow 3.1 (3.2+ reads the same from the provider info)."""
        return dict(ATLASSIAN_FORM)

    # --- connection ------------------------------------------------------------------------------------------

    @cached_property
    def _connection_settings(self) -> dict[str, Any]:
        """The connection resolved and checked: base URL, org id, key, page size, pacing, timeout, retries.

        :raises ConnectionConfigError: a missing Organization ID or API key, or an extra that cannot be used.
        """
        conn = self.get_connection(self.atlassian_conn_id)
        org_id = (conn.login or "").strip()
        if not org_id:
            raise ConnectionConfigError(
                f"connection {self.atlassian_conn_id!r} has no Organization ID: put it in the login field"
            )
        if not conn.password:
            raise ConnectionConfigError(
                f"connection {self.atlassian_conn_id!r} has no API key: put the organization API key "
                "(admin.atlassian.com > Settings > API keys) in the password field"
            )
        for form in SecretScrubber(conn.password).forms:
            _mask(form)
        _check_api_key(conn.password, self.atlassian_conn_id)
        _check_org_id(org_id, self.atlassian_conn_id)
        extra = read_extras(ATLASSIAN_EXTRAS, conn.extra_dejson, self.atlassian_conn_id)
        host = (conn.host or DEFAULT_BASE_URL).strip().rstrip("/")
        if "://" not in host:
            host = f"https://{host}"
        if conn.port and urlsplit(host).port is None:
            host = f"{host}:{conn.port}"
        _check_base_url(host, self.atlassian_conn_id, bool(extra["allow_insecure_http"]))
        rpm = {
            STREAM: float(extra["stream_requests_per_minute"]),
            EVENTS: float(extra["events_requests_per_minute"]),
        }
        rpm.update({k: float(v) for k, v in self._rpm_override.items()})
        page_size = int(self._page_size_override or extra["page_size"])
        if not 1 <= page_size <= 1000:
            raise ConnectionConfigError(f"page_size {page_size} is out of range: use 1..1000 (200 is the API default)")
        return {
            "base_url": host,
            "org_id": org_id,
            "api_key": conn.password,
            "page_size": page_size,
            "rpm": rpm,
            "timeout": float(extra["timeout"]),
            "max_retries": int(extra["max_retries"]),
            "request_deadline": float(extra["request_deadline"]),
            "max_response_bytes": int(extra["max_response_bytes"]),
        }

    def validate(self) -> None:
        """Resolve and check the connection without any network I/O.

        :raises ConnectionConfigError: naming the field and the fix.
        """
        _ = self._connection_settings

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``https://api.atlassian.com``."""
        return str(self._connection_settings["base_url"])

    @property
    def org_id(self) -> str:
        """The organization id from the connection's login."""
        return str(self._connection_settings["org_id"])

    @property
    def page_size(self) -> int:
        """Events requested per page: the connection's ``page_size``, or 200 once the API refused it."""
        if self._accepted_page_size is not None:
            return self._accepted_page_size
        return int(self._connection_settings["page_size"])

    @cached_property
    def _pacers(self) -> dict[str, _RequestPacer]:
        return {
            path: _RequestPacer(rpm, claimed_at=self._share_claimed_at)
            for path, rpm in self._connection_settings["rpm"].items()
        }

    def get_conn(self) -> requests.Session:
        """Return the requests session, with the bearer token set."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        adapter = DeadlineAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers.update(
            {
                "Authorization": f"Bearer {self._connection_settings['api_key']}",
                "Accept": "application/json",
                # Only encodings read_capped_body decodes with a bounded output.
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": "airflow-provider-atlassian-qradar",
            }
        )
        return session

    @cached_property
    def _scrub(self) -> SecretScrubber:
        """Removes the API key, in any form a server or library may echo it, from a text."""
        return SecretScrubber(self._connection_settings["api_key"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(atlassian_conn_id={self.atlassian_conn_id!r})"

    # --- one request -----------------------------------------------------------------------------------------

    def _org_path(self, suffix: str) -> str:
        return f"{self.base_url}/admin/v1/orgs/{quote(self.org_id, safe='')}/{suffix}"

    def _get_json(self, path_kind: str, url: str, params: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        """GET with pacing, 429 handling and bounded retries of 5xx, resets, timeouts and garbled bodies."""
        settings = self._connection_settings
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(
                (
                    _RetryableResponse,
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    _MalformedBody,
                )
            ),
            wait=self._wait_before_retry,
            stop=tenacity.stop_after_attempt(settings["max_retries"] + 1),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        scrub = self._scrub
        try:
            return retrying(self._get_json_once, path_kind, url, params)
        except _RetryableResponse as err:
            raise AtlassianApiError(
                scrub(
                    f"Atlassian kept answering HTTP {err.status} for {url} after {settings['max_retries']} retries "
                    f"({err}). If it is 429, lower the request rate (fewer parallel windows, or the connection "
                    "extra 'stream_requests_per_minute'); if 5xx, the API is degraded: the task retry will resume "
                    "later."
                ),
                status=err.status,
            ) from None
        except _DeadlineExceeded:
            raise AtlassianApiError(
                f"the Atlassian API at {self.base_url} did not complete a response within the request deadline of "
                f"{settings['request_deadline']:g} s, {settings['max_retries'] + 1} times (it answers too slowly, "
                "e.g. a proxy trickling the body): check the network path; the connection extra "
                "'request_deadline' sets the deadline; the task retry will try again",
                code="deadline",
            ) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            raise AtlassianApiError(
                f"could not reach the Atlassian API at {self.base_url} after {settings['max_retries']} retries "
                f"({type(err).__name__}): check the connection host, DNS and outbound firewall/proxy"
            ) from None
        except _MalformedBody as err:
            raise AtlassianApiError(
                scrub(
                    f"Atlassian returned a body that is not valid JSON for {url} after "
                    f"{settings['max_retries']} retries ({err}); the task retry will try again"
                )
            ) from None
        except requests.RequestException as err:
            # InvalidURL, InvalidHeader, InvalidSchema...: a request that cannot be sent; retrying cannot help.
            raise AtlassianApiError(
                f"the request to the Atlassian API at {self.base_url} could not be sent ({type(err).__name__}): "
                "check the connection's host, Organization ID and API key fields",
                code="invalid-config",
                permanent=True,
            ) from None

    def _get_json_once(self, path_kind: str, url: str, params: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        settings = self._connection_settings
        self.stats.pacing_seconds += self._pacers[path_kind].wait() if path_kind in self._pacers else 0.0
        self.stats.requests += 1
        deadline = RequestDeadline(settings["request_deadline"])
        try:
            with deadline.armed():
                response = self._session.get(
                    url,
                    params=list(params),
                    timeout=settings["timeout"],
                    allow_redirects=False,  # the key must not follow a redirect, and a foreign answer is no answer
                    stream=True,  # the body is read under a size cap and the deadline
                )
                with response:
                    return self._read_answer(response, cursor_sent=any(name == "cursor" for name, _ in params))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if deadline.expired:
                raise _DeadlineExceeded(f"no complete response within {settings['request_deadline']:g} s") from None
            if isinstance(err, urllib3.exceptions.HTTPError):  # a body cut short while streaming it
                raise requests.exceptions.ChunkedEncodingError(self._scrub(str(err))) from None
            raise

    def _read_answer(self, response: requests.Response, *, cursor_sent: bool) -> dict[str, Any]:
        """Turn one streamed response into a page body, or raise the right retryable or permanent error."""
        status = response.status_code
        if 300 <= status < 400:
            raise self._redirect_error(response)
        if status >= 400:
            body = self._read_body(response, _MAX_ERROR_BODY_BYTES, error_body=True)
            if status == 429:
                self.stats.rate_limited += 1
                raise _RetryableResponse(status, _retry_wait_seconds(response), "rate limited")
            code, detail = _error_detail(response, body)
            if status >= 500:
                raise _RetryableResponse(status, None, self._scrub(detail))
            raise self._client_error(status, code, detail, cursor_sent=cursor_sent)
        body = self._read_body(response, self._connection_settings["max_response_bytes"], error_body=False)
        try:
            parsed = json.loads(body)
        except ValueError as err:
            raise _MalformedBody(f"{type(err).__name__} at byte {getattr(err, 'pos', '?')}") from None
        if not isinstance(parsed, dict):
            raise _MalformedBody(f"expected a JSON object, got {type(parsed).__name__}")
        return parsed

    def _read_body(self, response: requests.Response, limit: int, *, error_body: bool) -> bytes:
        try:
            return read_capped_body(response, limit)
        except ResponseTooLarge as err:
            if error_body:
                return b""  # an oversized error page: the status alone is the message
            raise AtlassianApiError(
                f"Atlassian answered {response.url.split('?')[0]}: {err}"
                f"{' (a compression bomb?)' if err.compressed else ''}; a page of {self.page_size} events is far "
                "smaller, so this is not the API talking: check the connection host and any proxy in between. "
                "The connection extra 'max_response_bytes' sets the cap",
                code="response-too-large",
                permanent=True,
            ) from None
        except UnsupportedEncoding as err:
            raise AtlassianApiError(
                f"Atlassian answered with {err}; check any proxy in between", code="protocol", permanent=True
            ) from None

    def _redirect_error(self, response: requests.Response) -> AtlassianApiError:
        location = response.headers.get("Location") or ""
        target = format_origin(origin(requests.compat.urljoin(response.url, location))) if location else "nowhere"
        return AtlassianApiError(
            f"Atlassian answered {response.status_code} redirecting to {target}: API calls never follow redirects "
            "(the API key must not be sent elsewhere, and an answer from elsewhere is not the audit log). Point "
            f"the connection host at the API itself ({DEFAULT_BASE_URL}); if the API moved, update the host",
            status=response.status_code,
            code="redirect",
            permanent=True,
        )

    def _wait_before_retry(self, retry_state: tenacity.RetryCallState) -> float:
        self.stats.retries += 1
        outcome = retry_state.outcome
        err = outcome.exception() if outcome is not None else None
        if isinstance(err, _RetryableResponse) and err.wait_seconds is not None:
            return min(err.wait_seconds, MAX_RATE_LIMIT_WAIT_SECONDS) + random.uniform(0, 0.25)
        # No hint from the server: exponential backoff with full jitter, 1 s to 60 s.
        ceiling = min(60.0, 2.0 ** (retry_state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        err = outcome.exception() if outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.log.warning(
            "Atlassian API: %s; retry %d in %.1f s", self._scrub(_describe(err)), retry_state.attempt_number, wait
        )

    def _client_error(self, status: int, code: str | None, detail: str, *, cursor_sent: bool) -> AtlassianApiError:
        org = self.org_id
        if cursor_sent:
            bad_request = (
                "the request was rejected (an expired or invalid page cursor, or a bad from/to time): "
                "re-run the window; if it persists, check the window bounds"
            )
        else:
            bad_request = (
                "the request was rejected (no page cursor was sent, so a filter or the from/to time is wrong): "
                "check the operator's query/action/actor/ip/product filters and the window bounds"
            )
        fixes = {
            400: bad_request,
            401: "the API key is wrong, expired or revoked: create a new organization API key in "
            "admin.atlassian.com > Settings > API keys and update the connection's password",
            403: "the API key lacks scope read:events:admin, or the organization has no Atlassian Guard "
            "subscription, or the key belongs to another organization",
            404: f"organization {org!r} was not found: check the connection's Organization ID (login)",
        }
        fix = fixes.get(status, "check the connection settings")
        label = f"{status} {code}" if code else str(status)
        return AtlassianApiError(
            self._scrub(f"Atlassian returned {label} for org {org} ({detail}): {fix}"), status=status, code=code
        )

    # --- windows -----------------------------------------------------------------------------------------------

    def iter_events(
        self,
        start: datetime,
        end: datetime,
        *,
        query: str | None = None,
        action: str | None = None,
        actor: Sequence[str] | str | None = None,
        ip: Sequence[str] | str | None = None,
        product: Sequence[str] | str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every event the API returns for ``[start, end)`` exactly once, lazily, page by page.

        The API's own ``from``/``to`` filter decides what belongs to the window, whichever clock it filters on
        (event time or processing time: Atlassian does not say). No returned event is dropped for a clock;
        repeats are. Consecutive half-open windows therefore tile the log under either clock.

        Without filters this reads ``/events-stream`` (ordered by processing time); with any filter it reads
        ``/events`` (newest first, 10 requests/min), re-sending the filters with every cursor request.

        :param start: inclusive window start, timezone-aware.
        :param end: exclusive window end, timezone-aware.
        :param query: free-text search term (``q``).
        :param action: one action id from ``get_event_actions()``.
        :param actor: actor account id(s).
        :param ip: IP address(es).
        :param product: product name(s), e.g. ``jira``.
        """
        for page in self.iter_pages(start, end, query=query, action=action, actor=actor, ip=ip, product=product):
            yield from page.events

    def iter_pages(
        self,
        start: datetime,
        end: datetime,
        *,
        query: str | None = None,
        action: str | None = None,
        actor: Sequence[str] | str | None = None,
        ip: Sequence[str] | str | None = None,
        product: Sequence[str] | str | None = None,
        resume_cursor: str | None = None,
        skip: int = 0,
        newest_first: bool = False,
    ) -> Generator[Page, None, None]:
        """Yield the pages of a window; like :meth:`iter_events` but page by page, and resumable.

        :param resume_cursor: start from this cursor (saved from ``Page.next_cursor``) instead of the beginning.
        :param skip: the number of window events already delivered before ``resume_cursor`` (or, without a
            cursor, to drop from the beginning of the walk); pages report positions counting them.
        :param newest_first: read the stream by decreasing processing time (``sortOrder=desc``), so a reader
            looking for recently processed events can stop early. Ignored with filters (``/events`` is newest
            first by event time anyway).
        """
        window = Window(start, end)
        filters = _filter_params(query=query, action=action, actor=actor, ip=ip, product=product)
        path_kind = EVENTS if filters else STREAM
        order = [("sortOrder", "desc")] if newest_first and path_kind == STREAM else []
        recent = _RecentIds(RECENT_IDS_REMEMBERED)
        evidence = self.clock_evidence = ClockEvidence()
        position = skip if resume_cursor else 0
        to_drop = 0 if resume_cursor else skip
        cursor = resume_cursor
        restarts_left = 2
        empty_pages = stale_pages = unexplained_pages = stuck_pages = 0
        while True:
            params: list[tuple[str, Any]] = [
                ("from", window.start_ms),
                ("to", window.end_ms - 1),
                ("limit", self.page_size),
                *order,
                *filters,
            ]
            if cursor:
                params.append(("cursor", cursor))
            try:
                body = self._get_json(path_kind, self._org_path(path_kind), params)
            except AtlassianApiError as err:
                if err.status == 400 and not cursor and self.page_size > FALLBACK_PAGE_SIZE:
                    # Peers document pages of up to 500; an API that refuses the size gets the documented default.
                    self.log.warning(
                        "Atlassian refused limit=%d (%s); reading with limit=%d from now on",
                        self.page_size,
                        err.code or err.status,
                        FALLBACK_PAGE_SIZE,
                    )
                    self._accepted_page_size = FALLBACK_PAGE_SIZE
                    continue
                if not (cursor and err.status == 400 and restarts_left):
                    raise
                # The server forgot or rejected our cursor: walk the window again, dropping what was yielded.
                restarts_left -= 1
                self.stats.restarts += 1
                self.log.warning(
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
            self.stats.pages += 1
            fresh: list[dict[str, Any]] = []
            times: list[int | None] = []
            processed: list[int | None] = []
            repeats_before = self.stats.duplicates_skipped
            explained = 0
            for event in data:
                is_new, time_ms, processed_ms = self._accept(event, recent)
                explained += evidence.add(window, time_ms, processed_ms)
                if not is_new:
                    continue
                if to_drop:
                    to_drop -= 1
                    continue
                fresh.append(event)
                times.append(time_ms)
                processed.append(processed_ms)
            next_cursor = self._next_cursor(body)
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
            self.stats.events += len(fresh)
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
            elif self.stats.duplicates_skipped > repeats_before:
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
                if self._is_last_page(body, len(data)):
                    return
            cursor = next_cursor

    def _accept(self, event: Any, recent: _RecentIds) -> tuple[bool, int | None, int | None]:
        """Tell whether an event is new (not a repeat); return (new, time in ms, processedAt in ms).

        Never judges by time: the server's ``from``/``to`` decide the window (see :meth:`iter_events`).
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
        time_ms = self._event_ms(event_id, attributes, "time")
        processed_ms = self._event_ms(event_id, attributes, "processedAt")
        if not recent.add(event_id):
            self.stats.duplicates_skipped += 1
            return False, time_ms, processed_ms
        return True, time_ms, processed_ms

    def _event_ms(self, event_id: str, attributes: Any, key: str) -> int | None:
        raw = attributes.get(key) if isinstance(attributes, dict) else None
        if not isinstance(raw, str):
            return None
        try:
            return parse_timestamp_ms(raw)
        except ValueError:
            self.log.warning("event %s has an unreadable %s %r; delivering it anyway", event_id, key, raw)
            return None

    def _is_last_page(self, body: dict[str, Any], count: int) -> bool:
        # A short page ends the walk only when the server tells us the page size it used: a server that
        # clamps `limit` silently would otherwise make us stop early and lose events.
        meta = body.get("meta") or {}
        page_size = meta.get("page_size") if isinstance(meta, dict) else None
        return isinstance(page_size, int) and page_size > 0 and count < page_size

    def _next_cursor(self, body: dict[str, Any]) -> str | None:
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
        theirs, ours = origin(link), origin(self.base_url)
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

    # --- other endpoints ------------------------------------------------------------------------------------

    def get_event_actions(self) -> dict[str, dict[str, Any]]:
        """Return ``{action id: {"displayName", "groupDisplayName", ...}}`` from ``/event-actions`` (cached)."""
        if self._event_actions is None:
            body = self._get_json("event-actions", self._org_path("event-actions"), [])
            actions: dict[str, dict[str, Any]] = {}
            for item in body.get("data") or []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    actions[item["id"]] = dict(item.get("attributes") or {})
            self._event_actions = actions
        return self._event_actions

    def get_action_groups(self) -> dict[str, str]:
        """Return ``{action id: group display name}``: the LEEF ``actionGroup`` of each action (never ``cat``)."""
        groups: dict[str, str] = {}
        for action_id, attributes in self.get_event_actions().items():
            group = attributes.get("groupDisplayName")
            if not group and attributes.get("groupDisplayNames"):
                group = attributes["groupDisplayNames"][0]
            if isinstance(group, str) and group:
                groups[action_id] = group
        return groups

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and org with one cheap authenticated call (``/event-actions``)."""
        try:
            actions = self.get_event_actions()
        except Exception as err:  # the UI shows the message; it never contains the key
            return False, str(err)
        return True, f"Connected to organization {self.org_id}: {len(actions)} event actions readable"


def _filter_params(
    *,
    query: str | None,
    action: str | None,
    actor: Sequence[str] | str | None,
    ip: Sequence[str] | str | None,
    product: Sequence[str] | str | None,
) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if query:
        params.append(("q", query))
    if action:
        params.append(("action", action))
    for name, values in (("actor", actor), ("ip", ip), ("product", product)):
        if isinstance(values, str):
            values = [values]
        params.extend((name, value) for value in values or () if value)
    return params


def _event_time(event: dict[str, Any]) -> str:
    """Where an event without an id sits, for the error message: its time, if it has one."""
    attributes = event.get("attributes")
    moment = attributes.get("time") if isinstance(attributes, dict) else None
    return f"time {str(moment)[:40]!r}" if moment else "no time either"


def _describe(err: BaseException | None) -> str:
    if err is None:
        return "unknown error"
    if isinstance(err, _RetryableResponse):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _mask(secret: str) -> None:
    """Register a secret with Airflow's masker so it never shows in task logs."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older Task SDKs
        return
    mask_secret(secret)
