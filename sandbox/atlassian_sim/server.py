"""HTTP server of the Atlassian audit-log simulator (stdlib ``http.server``)."""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sandbox.atlassian_sim.config import Faults, SimulatorConfig
from sandbox.atlassian_sim.generator import (
    EventStore,
    IndexEntry,
    dump_json,
    event_products,
    ids_of,
    iter_actions,
    to_epoch_us,
)

_API_PREFIX = re.compile(r"^/admin/v1/orgs/([^/]+)(/.*)?$")
_EVENT_PATH = re.compile(r"^/events/([^/]+)$")
_FOREIGN_HOST = "https://evil.example.net"
_WINDOW_SECONDS = 60.0
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: larger values cannot be dates

_TITLES = {
    "ADMIN-400-1": "Invalid page cursor",
    "ADMIN-400-3": "Invalid time date",
    "ADMIN-400-4": "Invalid resource",
    "ADMIN-401-1": "Unauthorized",
    "ADMIN-403-3": "Not allowed to manage the org",
    "ADMIN-404-1": "Unknown resource",
    "ADMIN-404-2": "Organization not found",
    "ADMIN-404-4": "Event not found",
    "ADMIN-405-1": "Method not supported",
    "ADMIN-429-1": "Rate limit exceeded",
    "ADMIN-500-1": "Internal error",
}


@dataclass(frozen=True)
class RequestRecord:
    """
    One request the simulator answered on an API path (``/_sim`` requests are not recorded).

    :param method: HTTP method.
    :param path: URL path without the query string.
    :param params: query parameters, every value a list (``parse_qs`` shape).
    :param status: HTTP status sent.
    :param at: wall-clock time the request arrived, epoch seconds.
    """

    method: str
    path: str
    params: dict[str, list[str]]
    status: int
    at: float


@dataclass
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reset_mid_body: bool = False


class _ApiError(Exception):
    """Raised inside the handlers; turned into an Atlassian error body."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def error_body(status: int, code: str, detail: str) -> dict[str, Any]:
    """An Atlassian Admin API error document."""
    return {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": str(status),
                "code": code,
                "title": _TITLES.get(code, "Error"),
                "detail": detail,
            }
        ]
    }


def _json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, dump_json(document).encode(), dict(headers or {}))


def _iso_utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch_seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def encode_cursor(payload: dict[str, Any]) -> str:
    """Opaque cursor token: URL-safe base64 of compact JSON, padding stripped."""
    return base64.urlsafe_b64encode(dump_json(payload).encode()).decode().rstrip("=")


def decode_cursor(token: str, kind: str) -> dict[str, Any]:
    """
    Decode a token made by :func:`encode_cursor` for endpoint ``kind`` (``s`` stream, ``e`` events).

    :raises _ApiError: 400 ADMIN-400-1 when the token is not one of ours.
    """
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(payload, dict) or payload.get("v") != 1 or payload.get("k") != kind:
            raise ValueError("wrong cursor kind")
        position = payload.get("p")
        if position is not None and not (
            isinstance(position, list)
            and len(position) == 2
            and isinstance(position[0], int)
            and isinstance(position[1], str)
        ):
            raise ValueError("bad position")
        if kind == "s" and not (
            all(payload.get(name) is None or isinstance(payload.get(name), int) for name in ("f", "t"))
            and payload.get("o", "asc") in ("asc", "desc")
        ):
            raise ValueError("bad window")
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise _ApiError(400, "ADMIN-400-1", f"The cursor is invalid or expired: {error}") from error
    return payload


class _RateLimiter:
    """Sliding 60 s windows, one per endpoint kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()

    def acquire(self, kind: str, limit: int, now: float) -> tuple[bool, dict[str, str]]:
        """Count one request; return (allowed, headers to send)."""
        if limit <= 0:
            return True, {}
        with self._lock:
            hits = self._hits.setdefault(kind, deque())
            while hits and hits[0] <= now - _WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= limit:
                reset_at = hits[0] + _WINDOW_SECONDS
                wait = str(max(1, math.ceil(reset_at - now)))
                return False, {
                    "Retry-After": wait,
                    "X-Retry-After": wait,
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": _iso_utc(reset_at),
                }
            hits.append(now)
            return True, {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - len(hits)),
                "X-RateLimit-Reset": _iso_utc(hits[0] + _WINDOW_SECONDS),
            }


def _params_key(params: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Order-independent key of a request's query parameters."""
    return tuple(sorted((name, tuple(values)) for name, values in params.items()))


def _position(cursor: dict[str, Any]) -> tuple[int, str] | None:
    raw = cursor.get("p")
    return (int(raw[0]), str(raw[1])) if raw is not None else None


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values or values[0] == "":
        return None
    return values[0]


def _all(params: dict[str, list[str]], name: str) -> list[str]:
    # Accept both repeated keys and comma-separated values: the array encoding is undocumented.
    return [part for value in params.get(name, []) for part in value.split(",") if part]


def _parse_epoch_ms(params: dict[str, list[str]], name: str) -> int | None:
    raw = _first(params, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError as error:
        raise _ApiError(
            400, "ADMIN-400-3", f"'{name}' must be a UNIX epoch time in milliseconds, got {raw!r}"
        ) from error
    if not 0 <= value <= _MAX_MS:
        raise _ApiError(400, "ADMIN-400-3", f"'{name}'={value} is not a valid epoch time in milliseconds")
    return value


def _parse_window(params: dict[str, list[str]]) -> tuple[int | None, int | None]:
    from_ms, to_ms = _parse_epoch_ms(params, "from"), _parse_epoch_ms(params, "to")
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise _ApiError(400, "ADMIN-400-3", f"'from' ({from_ms}) is after 'to' ({to_ms})")
    return from_ms, to_ms


class SimulatorState:
    """Everything the request handlers share: config, events, faults, rate limits, request log."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = EventStore(config)
        self.faults = Faults()
        self.limiter = _RateLimiter()
        self.links_base = config.base_url_for_links.rstrip("/") if config.base_url_for_links else ""
        self._log_lock = threading.Lock()
        self._log: list[RequestRecord] = []
        # Filled by prebuild_stream() only when config.prebuilt_pages is set: {request parameters: page body}.
        self._prebuilt: dict[tuple[tuple[str, tuple[str, ...]], ...], bytes] = {}

    # --- request log ------------------------------------------------------------------------------------

    def record(self, entry: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(entry)

    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def reset_counters(self) -> None:
        with self._log_lock:
            self._log.clear()
        self.limiter.reset()

    def stats(self) -> dict[str, Any]:
        by_path: dict[str, Counter[str]] = {}
        for entry in self.requests():
            by_path.setdefault(entry.path, Counter())[str(entry.status)] += 1
        return {
            "total": sum(sum(counts.values()) for counts in by_path.values()),
            "by_path": {path: dict(counts) for path, counts in sorted(by_path.items())},
        }

    # --- API --------------------------------------------------------------------------------------------

    def handle_api(
        self, method: str, path: str, query: str, params: dict[str, list[str]], authorization: str | None
    ) -> _Response:
        """Answer one ``/admin/v1`` request, applying auth, faults and rate limits."""
        faults = self.faults
        try:
            if faults.slow_seconds > 0:
                time.sleep(faults.slow_seconds)
            self._authenticate(authorization)
            kind, event_id = self._route(path)
            if method != "GET":
                raise _ApiError(405, "ADMIN-405-1", f"{method} is not supported on {path}; use GET")
            limit = self._limit_for(kind)
            if faults.take("rate_limit_burst"):
                raise _ApiError(429, "ADMIN-429-1", "Rate limit exceeded (injected)", self._forced_429_headers(limit))
            if faults.take("server_error_burst"):
                status = faults.server_error_status
                raise _ApiError(status, "ADMIN-500-1", f"Internal error (injected {status})")
            if faults.take("forbidden"):
                raise _ApiError(403, "ADMIN-403-3", "The API key is not allowed to manage this organization")
            allowed, limit_headers = self.limiter.acquire(kind, limit, time.time())
            if not allowed:
                raise _ApiError(
                    429, "ADMIN-429-1", f"Rate limit of {limit} requests per minute exceeded", limit_headers
                )
            base = self.links_base or ""
            prebuilt = self._prebuilt.get(_params_key(params)) if kind == "stream" and self._prebuilt else None
            if prebuilt is not None:
                response = _Response(200, prebuilt, {})
            elif kind == "stream":
                response = self._stream_page(base, path, query, params)
            elif kind == "events":
                response = self._events_page(base, path, query, params)
            elif kind == "event":
                response = self._event_by_id(event_id or "")
            else:
                response = _json_response(200, {"data": list(iter_actions())})
            response.headers.update(limit_headers)
        except _ApiError as error:
            return _json_response(error.status, error_body(error.status, error.code, error.detail), error.headers)
        except Exception as error:  # a simulator bug must still answer like the API does
            return _json_response(500, error_body(500, "ADMIN-500-1", f"simulator error: {error!r}"))
        if 200 <= response.status < 300:
            faults.count_success()
            if faults.take("reset_mid_body"):
                response.reset_mid_body = True
        return response

    def _authenticate(self, authorization: str | None) -> None:
        expected = f"Bearer {self.config.api_key}"
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise _ApiError(
                401, "ADMIN-401-1", "Missing or invalid API key: send 'Authorization: Bearer <org API key>'"
            )
        if self.faults.key_revoked():
            raise _ApiError(401, "ADMIN-401-1", "The API key has been revoked or has expired")

    def _route(self, path: str) -> tuple[str, str | None]:
        match = _API_PREFIX.match(path)
        if not match:
            raise _ApiError(404, "ADMIN-404-1", f"No resource at {path}")
        org_id, rest = match.group(1), match.group(2) or ""
        if org_id != self.config.org_id:
            raise _ApiError(404, "ADMIN-404-2", f"Organization {org_id} not found")
        if rest == "/events-stream":
            return "stream", None
        if rest == "/events":
            return "events", None
        if rest == "/event-actions":
            return "actions", None
        event_match = _EVENT_PATH.match(rest)
        if event_match:
            return "event", event_match.group(1)
        raise _ApiError(404, "ADMIN-404-1", f"No resource at {path}")

    def _limit_for(self, kind: str) -> int:
        # Only the two list endpoints have documented limits; by-id and actions stay unlimited.
        if kind == "stream":
            return self.config.stream_requests_per_minute
        if kind == "events":
            return self.config.events_requests_per_minute
        return 0

    def _forced_429_headers(self, limit: int) -> dict[str, str]:
        faults = self.faults
        wait = faults.retry_after_seconds
        mode = faults.rate_limit_headers
        reset = _iso_utc(time.time() + wait)
        if mode == "retry-after":
            return {"Retry-After": _seconds_text(wait)}
        if mode == "x-retry-after":
            return {"X-Retry-After": _seconds_text(wait)}
        if mode == "reset-only":
            return {"X-RateLimit-Reset": reset}
        if mode == "none":
            return {}
        return {
            "Retry-After": _seconds_text(wait),
            "X-Retry-After": _seconds_text(wait),
            "X-RateLimit-Limit": str(limit if limit > 0 else 1),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }

    def _page_size(self, params: dict[str, list[str]]) -> int:
        raw = _first(params, "limit")
        if raw is None:
            return min(self.config.default_page_size, self.config.max_page_size)
        try:
            value = int(raw)
        except ValueError as error:
            raise _ApiError(400, "ADMIN-400-4", f"'limit' must be a positive integer, got {raw!r}") from error
        if value < 1:
            raise _ApiError(400, "ADMIN-400-4", f"'limit' must be a positive integer, got {value}")
        refused = self.config.refuse_page_size_over
        if refused is not None and value > refused:
            raise _ApiError(400, "ADMIN-400-4", f"'limit' must be between 1 and {refused}, got {value}")
        return min(value, self.config.max_page_size)

    def _cursor_payload(self, params: dict[str, list[str]], kind: str) -> dict[str, Any] | None:
        raw = _first(params, "cursor")
        if raw is None:
            return None
        if self.faults.take("reject_cursor"):
            raise _ApiError(400, "ADMIN-400-1", "The cursor is invalid or expired (injected)")
        return decode_cursor(raw, kind)

    def _page_response(
        self,
        base: str,
        path: str,
        query: str,
        texts: list[str],
        next_token: str | None,
        page_size: int,
        params: dict[str, list[str]],
    ) -> _Response:
        links: dict[str, Any] = {"self": f"{base}{path}" + (f"?{query}" if query else "")}
        meta: dict[str, Any] = {"next": next_token, "page_size": page_size}
        if next_token is not None:
            next_query = {"cursor": next_token}
            limit_param = _first(params, "limit")
            if limit_param is not None:
                next_query["limit"] = limit_param
            links["next"] = f"{base}{path}?{urlencode(next_query)}"
            if self.faults.take("foreign_next_link"):
                links["next"] = f"{_FOREIGN_HOST}{path}?{urlencode(next_query)}"
                del meta["next"]
        body = '{"data":[' + ",".join(texts) + '],"meta":' + dump_json(meta) + ',"links":' + dump_json(links) + "}"
        if self.faults.take("malformed_json"):
            body = body[: max(1, len(body) // 2)]
        return _Response(200, body.encode(), {})

    def prebuild_stream(self, from_ms: int, to_ms: int, limit: int) -> tuple[int, int]:
        """
        Render every ``/events-stream`` page of one walk now, to be served verbatim later (``prebuilt_pages``).

        The walk is the one a client makes with ``from``, ``to`` and ``limit`` as given, then ``cursor`` added.

        :return: (pages, events) rendered.
        :raises ValueError: when the config does not enable ``prebuilt_pages``.
        """
        if not self.config.prebuilt_pages:
            raise ValueError("prebuild_stream needs SimulatorConfig(prebuilt_pages=True)")
        path = f"/admin/v1/orgs/{self.config.org_id}/events-stream"
        params = {"from": [str(from_ms)], "to": [str(to_ms)], "limit": [str(limit)]}
        pages = events = 0
        while True:
            query = urlencode({name: values[0] for name, values in params.items()})
            texts, next_token, page_size = self._stream_page_parts(params)
            response = self._page_response(self.links_base, path, query, texts, next_token, page_size, params)
            self._prebuilt[_params_key(params)] = response.body
            pages, events = pages + 1, events + len(texts)
            if not texts or next_token is None:
                return pages, events
            params = {**params, "cursor": [next_token]}

    def _stream_page(self, base: str, path: str, query: str, params: dict[str, list[str]]) -> _Response:
        texts, next_token, page_size = self._stream_page_parts(params)
        return self._page_response(base, path, query, texts, next_token, page_size, params)

    def _stream_page_parts(self, params: dict[str, list[str]]) -> tuple[list[str], str | None, int]:
        page_size = self._page_size(params)
        cursor = self._cursor_payload(params, "s")
        if cursor is not None:
            # The stream cursor carries from/to/sortOrder; parameters re-sent with it are ignored.
            from_ms, to_ms, sort = cursor.get("f"), cursor.get("t"), cursor.get("o", "asc")
            position: tuple[int, str] | None = _position(cursor)
        else:
            from_ms, to_ms = _parse_window(params)
            sort = (_first(params, "sortOrder") or "asc").lower()
            position = None
        if sort not in ("asc", "desc"):
            raise _ApiError(400, "ADMIN-400-4", f"'sortOrder' must be asc or desc, got {sort!r}")
        ascending = sort == "asc"

        def token(at: tuple[int, str] | None) -> str:
            return encode_cursor({"v": 1, "k": "s", "p": list(at) if at else None, "f": from_ms, "t": to_ms, "o": sort})

        now_ms = int(time.time() * 1000)

        def walk(after: tuple[int, str] | None, forward: bool) -> list[IndexEntry]:
            # Walking back (the repeated-page fault) includes `after`: it is the last event of that page.
            entries = self.store.walk_stream(
                from_ms=from_ms,
                to_ms=to_ms,
                after=after,
                ascending=ascending == forward,
                now_ms=now_ms,
                include_after=not forward,
            )
            return list(itertools.islice(entries, page_size))

        page, next_token = self._apply_page_faults(position, walk, token)
        if page is None:
            page = walk(position, True)
            if page:
                next_token = token((page[-1].processed_ms, page[-1].event_id))
            else:
                next_token = token(position) if self.config.empty_page_cursor else None
        return [self.store.event_json(entry, True) for entry in page], next_token, page_size

    def _apply_page_faults(
        self,
        position: tuple[int, str] | None,
        walk: Callable[[tuple[int, str] | None, bool], list[IndexEntry]],
        token: Callable[[tuple[int, str] | None], str],
    ) -> tuple[list[IndexEntry] | None, str | None]:
        """Empty-page and repeated-page faults; (None, None) when neither fires."""
        faults = self.faults
        if faults.take("empty_page_with_cursor"):
            return [], token(position)
        if position is not None and faults.pending("repeat_previous_page"):
            previous = list(reversed(walk(position, False)))
            if previous and faults.take("repeat_previous_page"):
                return previous, token(position)
        return None, None

    def _events_filter(self, params: dict[str, list[str]]) -> Callable[[IndexEntry], bool] | None:
        action = _first(params, "action")
        actors = set(_all(params, "actor"))
        ips = set(_all(params, "ip"))
        products = {product.lower() for product in _all(params, "product")}
        needle = (_first(params, "q") or "").lower()
        if not (action or actors or ips or products or needle):
            return None
        store = self.store

        def matches(entry: IndexEntry) -> bool:
            event = store.shared_event(entry)
            attributes = event.get("attributes") or {}
            if action and attributes.get("action") != action:
                return False
            if actors and (attributes.get("actor") or {}).get("id") not in actors:
                return False
            if ips and (attributes.get("location") or {}).get("ip") not in ips:
                return False
            if products and not (event_products(event) & products):
                return False
            return not needle or needle in store.event_json(entry, False).lower()

        return matches

    def _events_page(self, base: str, path: str, query: str, params: dict[str, list[str]]) -> _Response:
        page_size = self._page_size(params)
        cursor = self._cursor_payload(params, "e")
        # ACCESS-1603: the /events cursor holds only the position; from/to/filters come from this request.
        position = _position(cursor) if cursor else None
        from_ms, to_ms = _parse_window(params)
        matches = self._events_filter(params)
        now_ms = int(time.time() * 1000)

        def token(at: tuple[int, str] | None) -> str:
            return encode_cursor({"v": 1, "k": "e", "p": list(at) if at else None})

        def walk(after: tuple[int, str] | None, forward: bool) -> list[IndexEntry]:
            entries = self.store.walk_time(
                from_ms=from_ms,
                to_ms=to_ms,
                after=after,
                newest_first=forward,
                now_ms=now_ms,
                matches=matches,
                include_after=not forward,
            )
            return list(itertools.islice(entries, page_size + (1 if forward else 0)))

        page, next_token = self._apply_page_faults(position, lambda at, fwd: walk(at, fwd)[:page_size], token)
        if page is None:
            page = walk(position, True)
            if len(page) > page_size:
                page = page[:page_size]
                next_token = token((page[-1].time_us, page[-1].event_id))
        texts = [self.store.event_json(entry, False) for entry in page]
        return self._page_response(base, path, query, texts, next_token, page_size, params)

    def _event_by_id(self, event_id: str) -> _Response:
        entry = self.store.entry(event_id)
        if entry is None or not self.store.is_served(entry, int(time.time() * 1000)):
            raise _ApiError(404, "ADMIN-404-4", f"Event {event_id} not found")
        return _Response(200, ('{"data":' + self.store.event_json(entry, False) + "}").encode(), {})

    # --- /_sim admin ------------------------------------------------------------------------------------

    def handle_admin(self, method: str, path: str, params: dict[str, list[str]], body: bytes) -> _Response:
        """Answer one ``/_sim`` request (no auth, no faults, not logged)."""
        if path == "/_sim/ground-truth" and method == "GET":
            try:
                start_ms = int(_first(params, "from") or -(1 << 62))
                end_ms = int(_first(params, "to") or (1 << 62))
            except ValueError:
                return _json_response(400, {"error": "from and to must be epoch milliseconds"})
            clock = _first(params, "clock")
            if clock not in (None, "time", "processed"):
                return _json_response(400, {"error": "clock must be time or processed"})
            entries = self.store.between(start_ms, end_ms, int(time.time() * 1000), clock)
            return _json_response(200, {"ids": ids_of(entries), "count": len(entries)})
        if path == "/_sim/faults":
            if method == "POST":
                try:
                    switches = json.loads(body or b"{}")
                    if not isinstance(switches, dict):
                        raise ValueError("body must be a JSON object of Faults fields")
                    self.faults.update(**switches)
                except ValueError as error:
                    return _json_response(400, {"error": str(error)})
            return _json_response(200, {"faults": self.faults.as_dict()})
        if path == "/_sim/stats" and method == "GET":
            return _json_response(200, self.stats())
        if path == "/_sim/reset" and method == "POST":
            self.reset_counters()
            return _json_response(200, {"ok": True})
        if path == "/_sim/health" and method == "GET":
            return _json_response(200, {"ok": True, "events": len(self.store), "org_id": self.config.org_id})
        return _json_response(404, {"error": f"unknown simulator admin path {method} {path}"})


class _Handler(BaseHTTPRequestHandler):
    server: _SimHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "atlassian-sim/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        arrived = time.time()
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if split.path.startswith("/_sim/"):
            response = state.handle_admin(method, split.path, params, body)
        else:
            response = state.handle_api(method, split.path, split.query, params, self.headers.get("Authorization"))
            state.record(RequestRecord(method, split.path, params, response.status, arrived))
        self._send(response)

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not response.reset_mid_body:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: len(response.body) // 2])
        self.wfile.flush()
        # SO_LINGER 0 turns close() into a TCP RST: the client sees a reset, not a clean EOF.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client resets and our own mid-body resets are expected; stay quiet."""


class Simulator:
    """
    A running simulator: the HTTP server plus the test-facing view of its data.

    Binds at construction (so :attr:`base_url` is known), serves after :meth:`start`. Use as a context manager
    or call :meth:`stop`.

    :param config: what to generate and how to behave.
    :param host: interface to bind; ``0.0.0.0`` for containers.
    :param port: TCP port; 0 picks a free one.
    """

    def __init__(self, config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self.state = SimulatorState(config)
        self._server = _SimHTTPServer((host, port), self.state)
        bound_host, bound_port = str(self._server.server_address[0]), int(self._server.server_address[1])
        shown_host = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host
        self.base_url = f"http://{shown_host}:{bound_port}"
        if not self.state.links_base:
            self.state.links_base = self.base_url
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._server.server_address[1])

    @property
    def faults(self) -> Faults:
        """The live fault switches."""
        return self.state.faults

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the API requests answered so far, oldest first."""
        return self.state.requests()

    @property
    def event_count(self) -> int:
        """Number of events held (generated plus explicit), before retention and visibility."""
        return len(self.state.store)

    def start(self) -> Simulator:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="atlassian-sim", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another one."""
        self._server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this simulator (``/admin/v1/...`` or ``/_sim/...``)."""
        return f"{self.base_url}{path}"

    def ground_truth(self, start: datetime, end: datetime, clock: str | None = None) -> list[str]:
        """
        Ids the stream returns for ``[start, end)`` right now: filter-clock value (ms) in the window.

        Respects retention and visibility at call time; sorted by ``(processedAt, id)``.

        :param clock: ``time`` or ``processed``; default the config's ``filter_clock``.
        """
        return ids_of(self._between(start, end, clock))

    def events_between(self, start: datetime, end: datetime, clock: str | None = None) -> list[dict[str, Any]]:
        """The events of :meth:`ground_truth` as full stream-form dicts (with ``processedAt``)."""
        return [self.state.store.event(entry) for entry in self._between(start, end, clock)]

    def event(self, event_id: str) -> dict[str, Any]:
        """
        One event as a stream-form dict, whether or not the API would serve it now.

        :raises KeyError: for an unknown id.
        """
        entry = self.state.store.entry(event_id)
        if entry is None:
            raise KeyError(f"no event with id {event_id!r} in this simulator")
        return self.state.store.event(entry)

    def reset_counters(self) -> None:
        """Forget the request log and every rate-limit window."""
        self.state.reset_counters()

    def prebuild_stream(self, start: datetime, end: datetime, limit: int) -> tuple[int, int]:
        """
        Render the ``/events-stream`` pages of ``[start, end)`` now (needs ``prebuilt_pages=True``).

        Matches a client that sends ``from`` = start in ms, ``to`` = end in ms minus 1 and ``limit``, as
        :class:`AtlassianAuditLogHook` does. Returns (pages, events) rendered.
        """
        start_ms, end_ms = to_epoch_us(start) // 1000, -(-to_epoch_us(end) // 1000)
        return self.state.prebuild_stream(start_ms, end_ms - 1, limit)

    def _between(self, start: datetime, end: datetime, clock: str | None = None) -> list[IndexEntry]:
        start_ms, end_ms = to_epoch_us(start) // 1000, -(-to_epoch_us(end) // 1000)
        return self.state.store.between(start_ms, end_ms, int(time.time() * 1000), clock)


def run_in_thread(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> Simulator:
    """
    Start a simulator serving in a daemon thread; use it as ``with run_in_thread(cfg) as sim:``.

    :param config: what to generate and how to behave.
    :param host: interface to bind (default loopback).
    :param port: TCP port (default: a free one).
    """
    return Simulator(config, host, port).start()
