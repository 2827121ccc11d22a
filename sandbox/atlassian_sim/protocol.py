"""The Admin API's wire format as the simulator speaks it: errors, cursors, rate-limit windows, query parameters."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sandbox.atlassian_sim.builder import event_products
from sandbox.atlassian_sim.generator import EventStore, dump_json
from sandbox.atlassian_sim.index import IndexEntry

API_PREFIX = re.compile(r"^/admin/v1/orgs/([^/]+)(/.*)?$")
EVENT_PATH = re.compile(r"^/events/([^/]+)$")
FOREIGN_HOST = "https://evil.example.net"
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


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reset_mid_body: bool = False


class ApiError(Exception):
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


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dump_json(document).encode(), dict(headers or {}))


def iso_utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch_seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def encode_cursor(payload: dict[str, Any]) -> str:
    """Opaque cursor token: URL-safe base64 of compact JSON, padding stripped."""
    return base64.urlsafe_b64encode(dump_json(payload).encode()).decode().rstrip("=")


def decode_cursor(token: str, kind: str) -> dict[str, Any]:
    """
    Decode a token made by :func:`encode_cursor` for endpoint ``kind`` (``s`` stream, ``e`` events).

    :raises ApiError: 400 ADMIN-400-1 when the token is not one of ours.
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
        raise ApiError(400, "ADMIN-400-1", f"The cursor is invalid or expired: {error}") from error
    return payload


class RateLimiter:
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
                    "X-RateLimit-Reset": iso_utc(reset_at),
                }
            hits.append(now)
            return True, {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - len(hits)),
                "X-RateLimit-Reset": iso_utc(hits[0] + _WINDOW_SECONDS),
            }


def params_key(params: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Order-independent key of a request's query parameters."""
    return tuple(sorted((name, tuple(values)) for name, values in params.items()))


def cursor_position(cursor: dict[str, Any]) -> tuple[int, str] | None:
    raw = cursor.get("p")
    return (int(raw[0]), str(raw[1])) if raw is not None else None


def first_param(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values or values[0] == "":
        return None
    return values[0]


def all_params(params: dict[str, list[str]], name: str) -> list[str]:
    # Accept both repeated keys and comma-separated values: the array encoding is undocumented.
    return [part for value in params.get(name, []) for part in value.split(",") if part]


def _parse_epoch_ms(params: dict[str, list[str]], name: str) -> int | None:
    raw = first_param(params, name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError as error:
        raise ApiError(
            400, "ADMIN-400-3", f"'{name}' must be a UNIX epoch time in milliseconds, got {raw!r}"
        ) from error
    if not 0 <= value <= _MAX_MS:
        raise ApiError(400, "ADMIN-400-3", f"'{name}'={value} is not a valid epoch time in milliseconds")
    return value


def parse_window(params: dict[str, list[str]]) -> tuple[int | None, int | None]:
    from_ms, to_ms = _parse_epoch_ms(params, "from"), _parse_epoch_ms(params, "to")
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise ApiError(400, "ADMIN-400-3", f"'from' ({from_ms}) is after 'to' ({to_ms})")
    return from_ms, to_ms


def events_filter(store: EventStore, params: dict[str, list[str]]) -> Callable[[IndexEntry], bool] | None:
    """The ``/events`` filters of a request as a predicate on index entries; ``None`` when there are none."""
    action = first_param(params, "action")
    actors = set(all_params(params, "actor"))
    ips = set(all_params(params, "ip"))
    products = {product.lower() for product in all_params(params, "product")}
    needle = (first_param(params, "q") or "").lower()
    if not (action or actors or ips or products or needle):
        return None

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
