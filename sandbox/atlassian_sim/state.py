"""What the simulator's request handlers share: the events, the faults, the rate limits and the request log."""

from __future__ import annotations

import hmac
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox.atlassian_sim.config import Faults, SimulatorConfig
from sandbox.atlassian_sim.generator import EventStore, dump_json, ids_of, iter_actions
from sandbox.atlassian_sim.index import IndexEntry
from sandbox.atlassian_sim.protocol import (
    API_PREFIX,
    EVENT_PATH,
    FOREIGN_HOST,
    ApiError,
    RateLimiter,
    Response,
    cursor_position,
    decode_cursor,
    encode_cursor,
    error_body,
    events_filter,
    first_param,
    iso_utc,
    json_response,
    params_key,
    parse_window,
    seconds_text,
)


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


class SimulatorState:
    """Everything the request handlers share: config, events, faults, rate limits, request log."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = EventStore(config)
        self.faults = Faults()
        self.limiter = RateLimiter()
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
    ) -> Response:
        """Answer one ``/admin/v1`` request, applying auth, faults and rate limits."""
        faults = self.faults
        try:
            if faults.slow_seconds > 0:
                time.sleep(faults.slow_seconds)
            self._authenticate(authorization)
            kind, event_id = self._route(path)
            if method != "GET":
                raise ApiError(405, "ADMIN-405-1", f"{method} is not supported on {path}; use GET")
            limit = self._limit_for(kind)
            if faults.take("rate_limit_burst"):
                raise ApiError(429, "ADMIN-429-1", "Rate limit exceeded (injected)", self._forced_429_headers(limit))
            if faults.take("server_error_burst"):
                status = faults.server_error_status
                raise ApiError(status, "ADMIN-500-1", f"Internal error (injected {status})")
            if faults.take("forbidden"):
                raise ApiError(403, "ADMIN-403-3", "The API key is not allowed to manage this organization")
            allowed, limit_headers = self.limiter.acquire(kind, limit, time.time())
            if not allowed:
                raise ApiError(429, "ADMIN-429-1", f"Rate limit of {limit} requests per minute exceeded", limit_headers)
            base = self.links_base or ""
            prebuilt = self._prebuilt.get(params_key(params)) if kind == "stream" and self._prebuilt else None
            if prebuilt is not None:
                response = Response(200, prebuilt, {})
            elif kind == "stream":
                response = self._stream_page(base, path, query, params)
            elif kind == "events":
                response = self._events_page(base, path, query, params)
            elif kind == "event":
                response = self._event_by_id(event_id or "")
            else:
                response = json_response(200, {"data": list(iter_actions())})
            response.headers.update(limit_headers)
        except ApiError as error:
            return json_response(error.status, error_body(error.status, error.code, error.detail), error.headers)
        except Exception as error:  # a simulator bug must still answer like the API does
            return json_response(500, error_body(500, "ADMIN-500-1", f"simulator error: {error!r}"))
        if 200 <= response.status < 300:
            faults.count_success()
            if faults.take("reset_mid_body"):
                response.reset_mid_body = True
        return response

    def _authenticate(self, authorization: str | None) -> None:
        expected = f"Bearer {self.config.api_key}"
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise ApiError(401, "ADMIN-401-1", "Missing or invalid API key: send 'Authorization: Bearer <org API key>'")
        if self.faults.key_revoked():
            raise ApiError(401, "ADMIN-401-1", "The API key has been revoked or has expired")

    def _route(self, path: str) -> tuple[str, str | None]:
        match = API_PREFIX.match(path)
        if not match:
            raise ApiError(404, "ADMIN-404-1", f"No resource at {path}")
        org_id, rest = match.group(1), match.group(2) or ""
        if org_id != self.config.org_id:
            raise ApiError(404, "ADMIN-404-2", f"Organization {org_id} not found")
        if rest == "/events-stream":
            return "stream", None
        if rest == "/events":
            return "events", None
        if rest == "/event-actions":
            return "actions", None
        event_match = EVENT_PATH.match(rest)
        if event_match:
            return "event", event_match.group(1)
        raise ApiError(404, "ADMIN-404-1", f"No resource at {path}")

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
        reset = iso_utc(time.time() + wait)
        if mode == "retry-after":
            return {"Retry-After": seconds_text(wait)}
        if mode == "x-retry-after":
            return {"X-Retry-After": seconds_text(wait)}
        if mode == "reset-only":
            return {"X-RateLimit-Reset": reset}
        if mode == "none":
            return {}
        return {
            "Retry-After": seconds_text(wait),
            "X-Retry-After": seconds_text(wait),
            "X-RateLimit-Limit": str(limit if limit > 0 else 1),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }

    def _page_size(self, params: dict[str, list[str]]) -> int:
        raw = first_param(params, "limit")
        if raw is None:
            return min(self.config.default_page_size, self.config.max_page_size)
        try:
            value = int(raw)
        except ValueError as error:
            raise ApiError(400, "ADMIN-400-4", f"'limit' must be a positive integer, got {raw!r}") from error
        if value < 1:
            raise ApiError(400, "ADMIN-400-4", f"'limit' must be a positive integer, got {value}")
        refused = self.config.refuse_page_size_over
        if refused is not None and value > refused:
            raise ApiError(400, "ADMIN-400-4", f"'limit' must be between 1 and {refused}, got {value}")
        return min(value, self.config.max_page_size)

    def _cursor_payload(self, params: dict[str, list[str]], kind: str) -> dict[str, Any] | None:
        raw = first_param(params, "cursor")
        if raw is None:
            return None
        if self.faults.take("reject_cursor"):
            raise ApiError(400, "ADMIN-400-1", "The cursor is invalid or expired (injected)")
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
    ) -> Response:
        links: dict[str, Any] = {"self": f"{base}{path}" + (f"?{query}" if query else "")}
        meta: dict[str, Any] = {"next": next_token, "page_size": page_size}
        if next_token is not None:
            next_query = {"cursor": next_token}
            limit_param = first_param(params, "limit")
            if limit_param is not None:
                next_query["limit"] = limit_param
            links["next"] = f"{base}{path}?{urlencode(next_query)}"
            if self.faults.take("foreign_next_link"):
                links["next"] = f"{FOREIGN_HOST}{path}?{urlencode(next_query)}"
                del meta["next"]
        body = '{"data":[' + ",".join(texts) + '],"meta":' + dump_json(meta) + ',"links":' + dump_json(links) + "}"
        if self.faults.take("malformed_json"):
            body = body[: max(1, len(body) // 2)]
        return Response(200, body.encode(), {})

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
            self._prebuilt[params_key(params)] = response.body
            pages, events = pages + 1, events + len(texts)
            if not texts or next_token is None:
                return pages, events
            params = {**params, "cursor": [next_token]}

    def _stream_page(self, base: str, path: str, query: str, params: dict[str, list[str]]) -> Response:
        texts, next_token, page_size = self._stream_page_parts(params)
        return self._page_response(base, path, query, texts, next_token, page_size, params)

    def _stream_page_parts(self, params: dict[str, list[str]]) -> tuple[list[str], str | None, int]:
        page_size = self._page_size(params)
        cursor = self._cursor_payload(params, "s")
        if cursor is not None:
            # The stream cursor carries from/to/sortOrder; parameters re-sent with it are ignored.
            from_ms, to_ms, sort = cursor.get("f"), cursor.get("t"), cursor.get("o", "asc")
            position: tuple[int, str] | None = cursor_position(cursor)
        else:
            from_ms, to_ms = parse_window(params)
            sort = (first_param(params, "sortOrder") or "asc").lower()
            position = None
        if sort not in ("asc", "desc"):
            raise ApiError(400, "ADMIN-400-4", f"'sortOrder' must be asc or desc, got {sort!r}")
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

    def _events_page(self, base: str, path: str, query: str, params: dict[str, list[str]]) -> Response:
        page_size = self._page_size(params)
        cursor = self._cursor_payload(params, "e")
        # ACCESS-1603: the /events cursor holds only the position; from/to/filters come from this request.
        position = cursor_position(cursor) if cursor else None
        from_ms, to_ms = parse_window(params)
        matches = events_filter(self.store, params)
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

    def _event_by_id(self, event_id: str) -> Response:
        entry = self.store.entry(event_id)
        if entry is None or not self.store.is_served(entry, int(time.time() * 1000)):
            raise ApiError(404, "ADMIN-404-4", f"Event {event_id} not found")
        return Response(200, ('{"data":' + self.store.event_json(entry, False) + "}").encode(), {})

    # --- /_sim admin ------------------------------------------------------------------------------------

    def handle_admin(self, method: str, path: str, params: dict[str, list[str]], body: bytes) -> Response:
        """Answer one ``/_sim`` request (no auth, no faults, not logged)."""
        if path == "/_sim/ground-truth" and method == "GET":
            try:
                start_ms = int(first_param(params, "from") or -(1 << 62))
                end_ms = int(first_param(params, "to") or (1 << 62))
            except ValueError:
                return json_response(400, {"error": "from and to must be epoch milliseconds"})
            clock = first_param(params, "clock")
            if clock not in (None, "time", "processed"):
                return json_response(400, {"error": "clock must be time or processed"})
            entries = self.store.between(start_ms, end_ms, int(time.time() * 1000), clock)
            return json_response(200, {"ids": ids_of(entries), "count": len(entries)})
        if path == "/_sim/faults":
            if method == "POST":
                try:
                    switches = json.loads(body or b"{}")
                    if not isinstance(switches, dict):
                        raise ValueError("body must be a JSON object of Faults fields")
                    self.faults.update(**switches)
                except ValueError as error:
                    return json_response(400, {"error": str(error)})
            return json_response(200, {"faults": self.faults.as_dict()})
        if path == "/_sim/stats" and method == "GET":
            return json_response(200, self.stats())
        if path == "/_sim/reset" and method == "POST":
            self.reset_counters()
            return json_response(200, {"ok": True})
        if path == "/_sim/health" and method == "GET":
            return json_response(200, {"ok": True, "events": len(self.store), "org_id": self.config.org_id})
        return json_response(404, {"error": f"unknown simulator admin path {method} {path}"})
