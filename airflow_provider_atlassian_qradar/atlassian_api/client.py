"""The Atlassian Organizations REST API client: a paced, bounded, retried GET and the endpoints built on it.

Pure code (no Airflow import); :class:`~airflow_provider_atlassian_qradar.hooks.atlassian.AtlassianAuditLogHook`
builds it from an Airflow connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
import tenacity
import urllib3

from airflow_provider_atlassian_qradar.atlassian_api.errors import (
    AtlassianApiError,
    DeadlineExceeded,
    MalformedBody,
    RetryableResponse,
    client_error,
    describe,
    error_detail,
    redirect_error,
)
from airflow_provider_atlassian_qradar.atlassian_api.guard import (
    RequestDeadline,
    ResponseTooLarge,
    SecretScrubber,
    UnsupportedEncoding,
    read_capped_body,
)
from airflow_provider_atlassian_qradar.atlassian_api.pacing import RequestPacer, backoff_seconds, retry_wait_seconds
from airflow_provider_atlassian_qradar.atlassian_api.paging import FetchStats, WarningLog

#: Error bodies are read only this far: they are shown in messages, never parsed for data.
_MAX_ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class ApiSettings:
    """One Atlassian connection, resolved and checked (the hook builds it; defaults come from the form table).

    :param base_url: e.g. ``https://api.atlassian.com``.
    :param org_id: the organization id.
    :param api_key: the organization API key (sent as a bearer token; never shown).
    :param page_size: events requested per page.
    :param requests_per_minute: pacing per path (``events-stream``, ``events``); 0 = unpaced.
    :param timeout: seconds per socket read.
    :param max_retries: retries per request of 429, 5xx, resets, timeouts and garbled bodies.
    :param request_deadline: seconds one request may take in total.
    :param max_response_bytes: the largest decoded body accepted.
    """

    base_url: str
    org_id: str
    api_key: str = field(repr=False)
    page_size: int
    requests_per_minute: Mapping[str, float]
    timeout: float
    max_retries: int
    request_deadline: float
    max_response_bytes: int


class AtlassianClient:
    """One organization's API through a requests session whose adapter obeys :class:`RequestDeadline`.

    It is the :class:`~airflow_provider_atlassian_qradar.atlassian_api.paging.PageSource` a window walk reads from.

    :param settings: the resolved connection.
    :param session: a session with the bearer token set and a ``DeadlineAdapter`` mounted.
    :param log: where retries and anomalies are logged.
    :param stats: the counters to update (a new set by default).
    :param sleep: how retry waits are slept (tests record them instead).
    :param share_claimed_at: when the caller's share of the budget began, on the :func:`time.monotonic` clock
        (default: now); see :class:`RequestPacer`.
    """

    def __init__(
        self,
        settings: ApiSettings,
        session: requests.Session,
        *,
        log: WarningLog,
        stats: FetchStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        share_claimed_at: float | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.log = log
        self.stats = FetchStats() if stats is None else stats
        #: events requested per page: the configured size, or the fallback once the API refused it
        self.page_size = settings.page_size
        self._sleep = sleep
        claimed_at = time.monotonic() if share_claimed_at is None else share_claimed_at
        self._pacers = {
            path: RequestPacer(rpm, claimed_at=claimed_at) for path, rpm in settings.requests_per_minute.items()
        }
        #: removes the API key, in any form a server or library may echo it, from a text
        self._scrub = SecretScrubber(settings.api_key)
        self._event_actions: dict[str, dict[str, Any]] | None = None

    @property
    def base_url(self) -> str:
        """The API base URL."""
        return self.settings.base_url

    def get_event_actions(self) -> dict[str, dict[str, Any]]:
        """Return ``{action id: {"displayName", "groupDisplayName", ...}}`` from ``/event-actions`` (cached)."""
        if self._event_actions is None:
            body = self.get_json("event-actions", [])
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

    # --- one request -----------------------------------------------------------------------------------------

    def get_json(self, path: str, params: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        """GET ``{org}/{path}``: paced, 429s waited out, 5xx, resets, timeouts and garbled bodies retried (bounded)."""
        settings = self.settings
        url = f"{settings.base_url}/admin/v1/orgs/{quote(settings.org_id, safe='')}/{path}"
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(
                (
                    RetryableResponse,
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    MalformedBody,
                )
            ),
            wait=self._wait_before_retry,
            stop=tenacity.stop_after_attempt(settings.max_retries + 1),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        scrub = self._scrub
        try:
            return retrying(self._get_json_once, path, url, params)
        except RetryableResponse as err:
            raise AtlassianApiError(
                scrub(
                    f"Atlassian kept answering HTTP {err.status} for {url} after {settings.max_retries} retries "
                    f"({err}). If it is 429, lower the request rate (fewer parallel windows, or the connection "
                    "extra 'stream_requests_per_minute'); if 5xx, the API is degraded: the task retry will resume "
                    "later."
                ),
                status=err.status,
            ) from None
        except DeadlineExceeded:
            raise AtlassianApiError(
                f"the Atlassian API at {settings.base_url} did not complete a response within the request deadline of "
                f"{settings.request_deadline:g} s, {settings.max_retries + 1} times (it answers too slowly, "
                "e.g. a proxy trickling the body): check the network path; the connection extra "
                "'request_deadline' sets the deadline; the task retry will try again",
                code="deadline",
            ) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
            raise AtlassianApiError(
                f"could not reach the Atlassian API at {settings.base_url} after {settings.max_retries} retries "
                f"({type(err).__name__}): check the connection host, DNS and outbound firewall/proxy"
            ) from None
        except MalformedBody as err:
            raise AtlassianApiError(
                scrub(
                    f"Atlassian returned a body that is not valid JSON for {url} after "
                    f"{settings.max_retries} retries ({err}); the task retry will try again"
                )
            ) from None
        except requests.RequestException as err:
            # InvalidURL, InvalidHeader, InvalidSchema...: a request that cannot be sent; retrying cannot help.
            raise AtlassianApiError(
                f"the request to the Atlassian API at {settings.base_url} could not be sent ({type(err).__name__}): "
                "check the connection's host, Organization ID and API key fields",
                code="invalid-config",
                permanent=True,
            ) from None

    def _get_json_once(self, path: str, url: str, params: Sequence[tuple[str, Any]]) -> dict[str, Any]:
        settings = self.settings
        pacer = self._pacers.get(path)
        if pacer is not None:
            self.stats.pacing_seconds += pacer.wait()
        self.stats.requests += 1
        deadline = RequestDeadline(settings.request_deadline)
        try:
            with deadline.armed():
                response = self.session.get(
                    url,
                    params=list(params),
                    timeout=settings.timeout,
                    allow_redirects=False,  # the key must not follow a redirect, and a foreign answer is no answer
                    stream=True,  # the body is read under a size cap and the deadline
                )
                with response:
                    return self._read_answer(response, cursor_sent=any(name == "cursor" for name, _ in params))
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if deadline.expired:
                raise DeadlineExceeded(f"no complete response within {settings.request_deadline:g} s") from None
            if isinstance(err, urllib3.exceptions.HTTPError):  # a body cut short while streaming it
                raise requests.exceptions.ChunkedEncodingError(self._scrub(str(err))) from None
            raise

    def _read_answer(self, response: requests.Response, *, cursor_sent: bool) -> dict[str, Any]:
        """Turn one streamed response into a page body, or raise the right retryable or permanent error."""
        status = response.status_code
        if 300 <= status < 400:
            raise redirect_error(response)
        if status >= 400:
            body = self._read_body(response, _MAX_ERROR_BODY_BYTES, error_body=True)
            if status == 429:
                self.stats.rate_limited += 1
                raise RetryableResponse(status, retry_wait_seconds(response), "rate limited")
            code, detail = error_detail(response, body)
            if status >= 500:
                raise RetryableResponse(status, None, self._scrub(detail))
            raise client_error(
                status, code, detail, org_id=self.settings.org_id, cursor_sent=cursor_sent, scrub=self._scrub
            )
        body = self._read_body(response, self.settings.max_response_bytes, error_body=False)
        try:
            parsed = json.loads(body)
        except ValueError as err:
            raise MalformedBody(f"{type(err).__name__} at byte {getattr(err, 'pos', '?')}") from None
        if not isinstance(parsed, dict):
            raise MalformedBody(f"expected a JSON object, got {type(parsed).__name__}")
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

    def _wait_before_retry(self, retry_state: tenacity.RetryCallState) -> float:
        self.stats.retries += 1
        outcome = retry_state.outcome
        err = outcome.exception() if outcome is not None else None
        server_wait = err.wait_seconds if isinstance(err, RetryableResponse) else None
        return backoff_seconds(retry_state.attempt_number, server_wait)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        outcome = retry_state.outcome
        err = outcome.exception() if outcome is not None else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.log.warning(
            "Atlassian API: %s; retry %d in %.1f s", self._scrub(describe(err)), retry_state.attempt_number, wait
        )
