"""What can go wrong talking to the Atlassian API, and the messages that say what to fix. Pure code."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests

from airflow_provider_atlassian_qradar.atlassian_api.guard import format_origin, origin
from airflow_provider_atlassian_qradar.connection_fields import DEFAULT_ATLASSIAN_BASE_URL

#: Statuses that need someone to change something (key, scope, org id, filters) before a retry can succeed.
PERMANENT_STATUSES = (400, 401, 403, 404)


class AtlassianApiError(Exception):
    """The Atlassian API refused a request, or the connection is misconfigured. The text says what to fix.

    :param status: the HTTP status, when the API answered.
    :param code: Atlassian's ``ADMIN-…`` error code, or one of ours (``looping``, ``redirect``, ``deadline`` …).
    :param permanent: overrides whether retrying can help; by default only for HTTP 400/401/403/404.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, permanent: bool | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self._permanent = permanent

    @property
    def permanent(self) -> bool:
        """Whether retrying cannot help until someone changes something; the operator then fails the task at once."""
        return self.status in PERMANENT_STATUSES if self._permanent is None else self._permanent


class RetryableResponse(Exception):
    """A 429 or 5xx answer, carrying how long the server asked us to wait (if it said)."""

    def __init__(self, status: int, wait_seconds: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.wait_seconds = wait_seconds


class MalformedBody(ValueError):
    """A 2xx body that is not a JSON object (truncated, garbled): retried like a network error."""


class DeadlineExceeded(requests.Timeout):
    """The request did not complete within its total deadline (a server trickling its answer)."""


def error_detail(response: requests.Response, body: bytes) -> tuple[str | None, str]:
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


def client_error(
    status: int, code: str | None, detail: str, *, org_id: str, cursor_sent: bool, scrub: Callable[[str], str]
) -> AtlassianApiError:
    """The error for a 4xx answer (other than 429), naming the likely cause and its fix; ``scrub`` removes the key."""
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
        404: f"organization {org_id!r} was not found: check the connection's Organization ID (login)",
    }
    fix = fixes.get(status, "check the connection settings")
    label = f"{status} {code}" if code else str(status)
    return AtlassianApiError(
        scrub(f"Atlassian returned {label} for org {org_id} ({detail}): {fix}"), status=status, code=code
    )


def redirect_error(response: requests.Response) -> AtlassianApiError:
    """The error for a 3xx answer: API calls never follow redirects."""
    location = response.headers.get("Location") or ""
    target = format_origin(origin(requests.compat.urljoin(response.url, location))) if location else "nowhere"
    return AtlassianApiError(
        f"Atlassian answered {response.status_code} redirecting to {target}: API calls never follow redirects "
        "(the API key must not be sent elsewhere, and an answer from elsewhere is not the audit log). Point "
        f"the connection host at the API itself ({DEFAULT_ATLASSIAN_BASE_URL}); if the API moved, update the host",
        status=response.status_code,
        code="redirect",
        permanent=True,
    )


def describe(err: BaseException | None) -> str:
    """A short text for a retry log line."""
    if err is None:
        return "unknown error"
    if isinstance(err, RetryableResponse):
        return str(err)
    return f"{type(err).__name__}: {err}"
