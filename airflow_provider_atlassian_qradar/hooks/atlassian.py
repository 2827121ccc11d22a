"""Hook for the Atlassian Cloud Organizations REST API audit log: an Airflow connection -> an API client.

The reading itself (pacing, retries, paging, guards) is pure code in
:mod:`airflow_provider_atlassian_qradar.atlassian_api`.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.sdk import BaseHook

from airflow_provider_atlassian_qradar.atlassian_api import (
    EVENTS,
    STREAM,
    ApiSettings,
    AtlassianClient,
    EventFilters,
    FetchStats,
    FilterArguments,
    Page,
)
from airflow_provider_atlassian_qradar.atlassian_api.guard import DeadlineAdapter, SecretScrubber
from airflow_provider_atlassian_qradar.atlassian_api.paging import walk_window
from airflow_provider_atlassian_qradar.atlassian_api.validation import (
    base_url_of,
    check_api_key,
    check_base_url,
    check_org_id,
)
from airflow_provider_atlassian_qradar.connection_fields import (
    ATLASSIAN_EXTRAS,
    ATLASSIAN_FORM,
    ConnectionConfigError,
    read_extras,
)
from airflow_provider_atlassian_qradar.windows import ClockEvidence, Window

if TYPE_CHECKING:
    from typing_extensions import Unpack  # in typing from Python 3.11; the package supports 3.10


class AtlassianAuditLogHook(BaseHook):
    """Read the Atlassian Cloud organization audit log.

    Connection (type ``atlassian_admin``): ``host`` = API base URL (default ``https://api.atlassian.com``),
    ``login`` = Organization ID, ``password`` = organization API key (sent as ``Authorization: Bearer``); the
    extras and their defaults are declared once in
    :data:`~airflow_provider_atlassian_qradar.connection_fields.ATLASSIAN_EXTRAS` (missing, ``null`` or empty
    means the default).

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
        #: what the events of the latest walk say about the server's filter clock (reset by each walk)
        self.clock_evidence = ClockEvidence()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel the connection form for Airflow 3.1 (3.2+ reads the same from the provider info)."""
        return dict(ATLASSIAN_FORM)

    # --- connection ------------------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ApiSettings:
        """The connection resolved and checked; the API key is registered with Airflow's secret masker.

        :raises ConnectionConfigError: a missing Organization ID or API key, or an extra that cannot be used.
        """
        conn_id = self.atlassian_conn_id
        conn = self.get_connection(conn_id)
        org_id = (conn.login or "").strip()
        if not org_id:
            raise ConnectionConfigError(f"connection {conn_id!r} has no Organization ID: put it in the login field")
        if not conn.password:
            raise ConnectionConfigError(
                f"connection {conn_id!r} has no API key: put the organization API key "
                "(admin.atlassian.com > Settings > API keys) in the password field"
            )
        for form in SecretScrubber(conn.password).forms:
            _mask(form)
        check_api_key(conn.password, conn_id)
        check_org_id(org_id, conn_id)
        extra = read_extras(ATLASSIAN_EXTRAS, conn.extra_dejson, conn_id)
        base_url = base_url_of(conn.host, conn.port)
        check_base_url(base_url, conn_id, bool(extra["allow_insecure_http"]))
        rpm = {
            STREAM: float(extra["stream_requests_per_minute"]),
            EVENTS: float(extra["events_requests_per_minute"]),
        }
        rpm.update({k: float(v) for k, v in self._rpm_override.items()})
        page_size = int(self._page_size_override or extra["page_size"])
        if not 1 <= page_size <= 1000:
            raise ConnectionConfigError(f"page_size {page_size} is out of range: use 1..1000 (200 is the API default)")
        return ApiSettings(
            base_url=base_url,
            org_id=org_id,
            api_key=conn.password,
            page_size=page_size,
            requests_per_minute=rpm,
            timeout=float(extra["timeout"]),
            max_retries=int(extra["max_retries"]),
            request_deadline=float(extra["request_deadline"]),
            max_response_bytes=int(extra["max_response_bytes"]),
        )

    def validate(self) -> None:
        """Resolve and check the connection without any network I/O.

        :raises ConnectionConfigError: naming the field and the fix.
        """
        _ = self.settings

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. ``https://api.atlassian.com``."""
        return self.settings.base_url

    @property
    def org_id(self) -> str:
        """The organization id from the connection's login."""
        return self.settings.org_id

    @property
    def page_size(self) -> int:
        """Events requested per page: the connection's ``page_size``, or 200 once the API refused it."""
        return self._client.page_size

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
                "Authorization": f"Bearer {self.settings.api_key}",
                "Accept": "application/json",
                # Only encodings read_capped_body decodes with a bounded output.
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": "airflow-provider-atlassian-qradar",
            }
        )
        return session

    @cached_property
    def _client(self) -> AtlassianClient:
        return AtlassianClient(
            self.settings,
            self._session,
            log=self.log,
            stats=self.stats,
            sleep=self._sleep,
            share_claimed_at=self._share_claimed_at,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(atlassian_conn_id={self.atlassian_conn_id!r})"

    # --- windows -----------------------------------------------------------------------------------------------

    def iter_events(
        self, start: datetime, end: datetime, **filters: Unpack[FilterArguments]
    ) -> Iterator[dict[str, Any]]:
        """Yield every event the API returns for ``[start, end)`` exactly once, lazily, page by page.

        The API's own ``from``/``to`` filter decides what belongs to the window, whichever clock it filters on
        (event time or processing time: Atlassian does not say). No returned event is dropped for a clock;
        repeats are. Consecutive half-open windows therefore tile the log under either clock.

        Without filters this reads ``/events-stream`` (ordered by processing time); with any filter it reads
        ``/events`` (newest first, 10 requests/min), re-sending the filters with every cursor request.

        :param start: inclusive window start, timezone-aware.
        :param end: exclusive window end, timezone-aware.
        :param filters: ``query`` (free-text ``q``), ``action`` (an id from :meth:`get_event_actions`), ``actor``
            (account ids), ``ip`` (addresses), ``product`` (names, e.g. ``jira``); one string or a list each.
        """
        for page in self.iter_pages(start, end, **filters):
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
        filters = EventFilters.of(query=query, action=action, actor=actor, ip=ip, product=product)
        evidence = self.clock_evidence = ClockEvidence()
        yield from walk_window(
            self._client,
            window,
            filters,
            evidence=evidence,
            resume_cursor=resume_cursor,
            skip=skip,
            newest_first=newest_first,
        )

    # --- other endpoints ------------------------------------------------------------------------------------

    def get_event_actions(self) -> dict[str, dict[str, Any]]:
        """Return ``{action id: {"displayName", "groupDisplayName", ...}}`` from ``/event-actions`` (cached)."""
        return self._client.get_event_actions()

    def get_action_groups(self) -> dict[str, str]:
        """Return ``{action id: group display name}``: the LEEF ``actionGroup`` of each action (never ``cat``)."""
        return self._client.get_action_groups()

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and org with one cheap authenticated call (``/event-actions``)."""
        try:
            actions = self.get_event_actions()
        except Exception as err:  # the UI shows the message; it never contains the key
            return False, str(err)
        return True, f"Connected to organization {self.org_id}: {len(actions)} event actions readable"


def _mask(secret: str) -> None:
    """Register a secret with Airflow's masker so it never shows in task logs."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older Task SDKs
        return
    mask_secret(secret)
