"""Unit tests of AtlassianAuditLogHook with requests_mock: the edge cases a real server cannot produce on demand.

Whole-window behaviour against the real simulator lives in tests/integration/test_atlassian_simulator.py.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.connection_fields import ConnectionConfigError
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
from airflow_provider_atlassian_qradar.windows import to_epoch_ms

BASE = "https://api.test.example"
ORG = "org-123"
KEY = "ATATT-super-secret-key-4242"
STREAM_URL = f"{BASE}/admin/v1/orgs/{ORG}/events-stream"
EVENTS_URL = f"{BASE}/admin/v1/orgs/{ORG}/events"
START = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=1)


def event(event_id: str, minute: int = 1, when: str | None = None) -> dict:
    """A minimal audit event inside [START, END) unless ``when`` says otherwise."""
    moment = when or (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"id": event_id, "type": "events", "attributes": {"time": moment, "action": "user_login"}}


def page(events: list[dict], next_cursor: str | None, page_size: int | None = None) -> dict:
    meta: dict = {"next": next_cursor}
    if page_size is not None:
        meta["page_size"] = page_size
    return {"data": events, "meta": meta, "links": {}}


def params_of(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


@pytest.fixture(autouse=True)
def atlassian_connection(monkeypatch):
    conn = {
        "conn_type": "atlassian_admin",
        "host": BASE,
        "login": ORG,
        "password": KEY,
        "extra": {"page_size": 3, "stream_requests_per_minute": 0, "events_requests_per_minute": 0, "max_retries": 3},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", json.dumps(conn))


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Record the hook's retry waits instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(AtlassianAuditLogHook, "_sleep", staticmethod(recorded.append))
    return recorded


class TestAtlassianAuditLogHookWindows:
    def test_sends_half_open_window_as_inclusive_millis(self, requests_mock):
        requests_mock.get(STREAM_URL, json=page([], None))
        assert list(AtlassianAuditLogHook().iter_events(START, END)) == []
        params = params_of(requests_mock.last_request)
        assert params["from"] == [str(to_epoch_ms(START))]
        assert params["to"] == [str(to_epoch_ms(END) - 1)]
        assert params["limit"] == ["3"]
        assert requests_mock.last_request.headers["Authorization"] == f"Bearer {KEY}"

    def test_walks_meta_next_until_empty_page(self, requests_mock):
        requests_mock.get(
            STREAM_URL,
            [
                {"json": page([event("a"), event("b"), event("c")], "c1")},
                {"json": page([event("d")], "c2")},
                {"json": page([], "c3")},
            ],
        )
        ids = [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)]
        assert ids == ["a", "b", "c", "d"]
        cursors = [params_of(r).get("cursor") for r in requests_mock.request_history]
        # An empty page that still carries a cursor is confirmed once; two empty pages in a row end the walk.
        assert cursors == [None, ["c1"], ["c2"], ["c3"]]

    def test_empty_page_with_cursor_mid_walk_loses_nothing(self, requests_mock):
        requests_mock.get(
            STREAM_URL,
            [
                {"json": page([event("a")], "c1")},
                {"json": page([], "c2")},
                {"json": page([event("b")], "c3")},
                {"json": page([], None)},
            ],
        )
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a", "b"]

    def test_empty_page_with_null_cursor_ends_at_once(self, requests_mock):
        requests_mock.get(STREAM_URL, json=page([], None))
        list(AtlassianAuditLogHook().iter_events(START, END))
        assert requests_mock.call_count == 1

    def test_is_lazy(self, requests_mock):
        requests_mock.get(STREAM_URL, [{"json": page([event("a")], "c1")}, {"json": page([event("b")], None)}])
        iterator = AtlassianAuditLogHook().iter_events(START, END)
        assert requests_mock.call_count == 0
        assert next(iterator)["id"] == "a"
        assert requests_mock.call_count == 1

    def test_short_page_ends_walk_only_when_server_reports_page_size(self, requests_mock):
        requests_mock.get(STREAM_URL, [{"json": page([event("a"), event("b")], "c1", page_size=3)}])
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a", "b"]
        assert requests_mock.call_count == 1

    def test_clamped_page_size_loses_nothing(self, requests_mock):
        # We ask for 3; the server silently serves 2 and says so in meta.page_size.
        requests_mock.get(
            STREAM_URL,
            [
                {"json": page([event("a"), event("b")], "c1", page_size=2)},
                {"json": page([event("c"), event("d")], "c2", page_size=2)},
                {"json": page([event("e")], "c3", page_size=2)},
            ],
        )
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a", "b", "c", "d", "e"]

    def test_short_page_without_page_size_keeps_walking(self, requests_mock):
        requests_mock.get(
            STREAM_URL,
            [{"json": page([event("a")], "c1")}, {"json": page([event("b")], "c2")}, {"json": page([], None)}],
        )
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a", "b"]

    def test_links_next_url_and_bare_token(self, requests_mock):
        requests_mock.get(
            STREAM_URL,
            [
                {"json": {"data": [event("a")], "links": {"next": f"{STREAM_URL}?cursor=tok%2B1&limit=3"}}},
                {"json": {"data": [event("b")], "links": {"next": "tok2"}}},
                {"json": {"data": [], "links": {"next": None}}},
            ],
        )
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a", "b"]
        cursors = [params_of(r).get("cursor") for r in requests_mock.request_history]
        assert cursors == [None, ["tok+1"], ["tok2"]]

    def test_refuses_foreign_links_next(self, requests_mock):
        requests_mock.get(
            STREAM_URL, json={"data": [event("a")], "links": {"next": "https://evil.example.net/x?cursor=1"}}
        )
        foreign = requests_mock.get("https://evil.example.net/x", json=page([], None))
        with pytest.raises(AtlassianApiError, match=r"refusing to follow links\.next to https://evil\.example\.net"):
            list(AtlassianAuditLogHook().iter_events(START, END))
        assert foreign.call_count == 0

    def test_delivers_every_returned_event_once_whatever_its_time(self, requests_mock):
        # The server's from/to decide the window: an event whose time is outside it was returned by a server
        # filtering on processedAt, and dropping it would lose it for good (it is returned for no other window).
        before = (START - timedelta(milliseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        at_end = END.strftime("%Y-%m-%dT%H:%M:%SZ")
        at_start = START.strftime("%Y-%m-%dT%H:%M:%SZ")
        requests_mock.get(
            STREAM_URL,
            [
                {"json": page([event("a"), event("b"), event("x", when=before)], "c1")},
                {"json": page([event("b"), event("y", when=at_end), event("s", when=at_start)], "c2")},
                {"json": page([], None)},
            ],
        )
        hook = AtlassianAuditLogHook()
        assert [e["id"] for e in hook.iter_events(START, END)] == ["a", "b", "x", "y", "s"]
        assert hook.stats.duplicates_skipped == 1

    @pytest.mark.parametrize(
        ("processed", "when", "expected"),
        [
            # time before the window, processed inside: only a processedAt filter returns it
            ("2026-11-20T10:02:00Z", "2026-11-20T09:59:00Z", "processed"),
            # time inside, processed after the window: only an event-time filter returns it
            ("2026-11-20T11:03:00Z", "2026-11-20T10:58:00Z", "time"),
            # both inside: says nothing
            ("2026-11-20T10:30:00Z", "2026-11-20T10:29:00Z", "unknown"),
        ],
    )
    def test_classifies_the_server_clock(self, requests_mock, processed, when, expected):
        odd = event("odd", when=when)
        odd["attributes"]["processedAt"] = processed
        plain = event("plain")
        plain["attributes"]["processedAt"] = "2026-11-20T10:01:30Z"
        requests_mock.get(STREAM_URL, [{"json": page([plain, odd], "c1")}, {"json": page([], None)}])
        hook = AtlassianAuditLogHook()
        assert [e["id"] for e in hook.iter_events(START, END)] == ["plain", "odd"]
        assert hook.clock_evidence.clock == expected

    def test_pages_no_clock_explains_stop_the_walk(self, requests_mock):
        # An endless stream of new ids whose time and processedAt are both outside the window: a looping server.
        def far_page(request, context):
            number = int(params_of(request).get("cursor", ["0"])[0])
            stale = event(f"old-{number}", when="2026-11-19T00:00:00Z")
            stale["attributes"]["processedAt"] = "2026-11-19T00:00:01Z"
            return page([stale], str(number + 1))

        route = requests_mock.get(STREAM_URL, json=far_page)
        hook = AtlassianAuditLogHook()
        with pytest.raises(AtlassianApiError, match="both outside the window") as caught:
            list(hook.iter_events(START, END))
        assert caught.value.code == "looping"
        assert route.call_count == 6

    def test_a_cursor_that_never_moves_stops_the_walk(self, requests_mock):
        # New ids inside the window, but the server answers every cursor with that same cursor.
        def same_cursor(request, context):
            number = len(route.request_history)
            return page([event(f"e{number}")], "stuck")

        route = requests_mock.get(STREAM_URL, json=same_cursor)
        hook = AtlassianAuditLogHook()
        with pytest.raises(AtlassianApiError, match="repeat the cursor"):
            list(hook.iter_events(START, END))
        assert route.call_count == 7

    def test_newest_first_sends_sort_order_desc(self, requests_mock):
        route = requests_mock.get(STREAM_URL, json=page([], None))
        list(AtlassianAuditLogHook().iter_pages(START, END, newest_first=True))
        assert params_of(route.last_request)["sortOrder"] == ["desc"]
        list(AtlassianAuditLogHook().iter_pages(START, END))
        assert "sortOrder" not in params_of(route.last_request)

    def test_filters_use_events_endpoint_and_are_resent_with_cursor(self, requests_mock):
        requests_mock.get(EVENTS_URL, [{"json": page([event("a")], "c1")}, {"json": page([], None)}])
        hook = AtlassianAuditLogHook()
        events = list(
            hook.iter_events(START, END, query="admin", action="user_login", actor=["u1", "u2"], ip="1.2.3.4")
        )
        assert [e["id"] for e in events] == ["a"]
        for request in requests_mock.request_history:
            params = params_of(request)
            assert params["q"] == ["admin"]
            assert params["action"] == ["user_login"]
            assert params["actor"] == ["u1", "u2"]
            assert params["ip"] == ["1.2.3.4"]
            assert params["from"] == [str(to_epoch_ms(START))]
        assert params_of(requests_mock.request_history[1])["cursor"] == ["c1"]

    def test_resume_from_cursor_counts_positions(self, requests_mock):
        requests_mock.get(STREAM_URL, [{"json": page([event("d")], "c5")}, {"json": page([], None)}])
        pages = list(AtlassianAuditLogHook().iter_pages(START, END, resume_cursor="c4", skip=3))
        assert params_of(requests_mock.request_history[0])["cursor"] == ["c4"]
        assert [(p.position, [e["id"] for e in p.events]) for p in pages] == [(3, ["d"]), (4, [])]

    def test_rejected_cursor_restarts_walk_and_skips_what_was_yielded(self, requests_mock):
        bad_cursor = {"errors": [{"status": "400", "code": "ADMIN-400-1", "title": "Invalid page cursor"}]}
        requests_mock.get(
            STREAM_URL,
            [
                {"json": page([event("a"), event("b")], "c1")},
                {"json": bad_cursor, "status_code": 400},
                {"json": page([event("a"), event("b"), event("c")], "c1")},
                {"json": page([], None)},
            ],
        )
        hook = AtlassianAuditLogHook()
        assert [e["id"] for e in hook.iter_events(START, END)] == ["a", "b", "c"]
        assert hook.stats.restarts == 1


class TestAtlassianAuditLogHookFaults:
    @pytest.mark.parametrize(
        ("headers", "expected_wait"),
        [
            ({"Retry-After": "7"}, 7.0),
            ({"X-Retry-After": "4"}, 4.0),
            ({"Retry-After": "2", "X-Retry-After": "9"}, 2.0),
        ],
    )
    def test_429_honours_retry_headers(self, requests_mock, waits, headers, expected_wait):
        requests_mock.get(STREAM_URL, [{"status_code": 429, "headers": headers}, {"json": page([event("a")], None)}])
        hook = AtlassianAuditLogHook()
        assert [e["id"] for e in hook.iter_events(START, END)] == ["a"]
        assert len(waits) == 1
        assert expected_wait <= waits[0] <= expected_wait + 0.25
        assert hook.stats.rate_limited == 1

    def test_429_honours_ratelimit_reset(self, requests_mock, waits):
        reset = (datetime.now(timezone.utc) + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        requests_mock.get(
            STREAM_URL,
            [{"status_code": 429, "headers": {"X-RateLimit-Reset": reset}}, {"json": page([event("a")], None)}],
        )
        list(AtlassianAuditLogHook().iter_events(START, END))
        assert 27 <= waits[0] <= 31

    def test_429_without_headers_backs_off_exponentially(self, requests_mock, waits):
        requests_mock.get(STREAM_URL, [{"status_code": 429}] * 3 + [{"json": page([event("a")], None)}])
        list(AtlassianAuditLogHook().iter_events(START, END))
        assert len(waits) == 3
        assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 2 <= waits[2] <= 4

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_5xx_burst_is_retried(self, requests_mock, waits, status):
        requests_mock.get(STREAM_URL, [{"status_code": status}] * 2 + [{"json": page([event("a")], None)}])
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a"]
        assert len(waits) == 2

    def test_5xx_forever_gives_up_with_clear_error(self, requests_mock, waits):
        requests_mock.get(STREAM_URL, status_code=503)
        with pytest.raises(AtlassianApiError, match="kept answering HTTP 503") as info:
            list(AtlassianAuditLogHook().iter_events(START, END))
        assert requests_mock.call_count == 4  # 1 + max_retries
        assert KEY not in str(info.value)

    def test_connection_errors_and_timeouts_are_retried(self, requests_mock, waits):
        requests_mock.get(
            STREAM_URL,
            [
                {"exc": requests.ConnectionError("reset by peer")},
                {"exc": requests.ReadTimeout("read timed out")},
                {"exc": requests.exceptions.ChunkedEncodingError("IncompleteRead")},
                {"json": page([event("a")], None)},
            ],
        )
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a"]
        assert len(waits) == 3

    def test_malformed_json_is_retried(self, requests_mock, waits):
        requests_mock.get(STREAM_URL, [{"text": '{"data": [{"id": '}, {"json": page([event("a")], None)}])
        assert [e["id"] for e in AtlassianAuditLogHook().iter_events(START, END)] == ["a"]

    @pytest.mark.parametrize(
        ("status", "code", "fix"),
        [
            (400, "ADMIN-400-3", "from/to time is wrong"),
            (401, None, "wrong, expired or revoked"),
            (403, "ADMIN-403-3", "read:events:admin"),
            (404, "ADMIN-404-2", "check the connection's Organization ID"),
        ],
    )
    def test_4xx_fails_fast_naming_the_fix_without_the_key(
        self, requests_mock, waits, caplog, capsys, status, code, fix
    ):
        body = {"errors": [{"status": str(status), "code": code, "title": "nope", "detail": f"Bearer {KEY}?"}]}
        body["errors"][0]["detail"] = "denied"
        requests_mock.get(STREAM_URL, status_code=status, json=body)
        caplog.set_level(logging.DEBUG)
        with pytest.raises(AtlassianApiError, match=fix) as info:
            list(AtlassianAuditLogHook().iter_events(START, END))
        assert requests_mock.call_count == 1
        assert waits == []
        assert info.value.status == status
        assert KEY not in str(info.value)
        assert KEY not in repr(info.value)
        captured = capsys.readouterr()
        assert KEY not in caplog.text + captured.out + captured.err

    def test_key_not_in_repr_or_retry_logs(self, requests_mock, waits, caplog, capsys):
        caplog.set_level(logging.DEBUG)
        requests_mock.get(
            STREAM_URL, [{"exc": requests.ConnectionError("boom")}, {"status_code": 503}, {"json": page([], None)}]
        )
        hook = AtlassianAuditLogHook()
        list(hook.iter_events(START, END))
        captured = capsys.readouterr()
        logged = caplog.text + captured.out + captured.err  # Airflow's structlog writes to stdout
        assert "retry 1" in logged and "retry 2" in logged
        assert KEY not in logged
        assert KEY not in repr(hook)

    def test_missing_key_or_org_is_a_clear_error(self, monkeypatch):
        conn = {"conn_type": "atlassian_admin", "host": BASE, "login": ORG}
        monkeypatch.setenv("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", json.dumps(conn))
        with pytest.raises(ConnectionConfigError, match="has no API key"):
            list(AtlassianAuditLogHook().iter_events(START, END))

    def test_naive_or_inverted_window_is_refused_before_any_request(self, requests_mock):
        with pytest.raises(ValueError, match="naive datetime"):
            list(AtlassianAuditLogHook().iter_events(datetime(2026, 1, 1), END))
        with pytest.raises(ValueError, match="not after its start"):
            list(AtlassianAuditLogHook().iter_events(END, START))
        assert requests_mock.call_count == 0


class TestAtlassianAuditLogHookOtherEndpoints:
    ACTIONS = {
        "data": [
            {
                "id": "user_login",
                "type": "event-actions",
                "attributes": {"displayName": "Logged in", "groupDisplayName": "Authentication"},
            },
            {
                "id": "group_created",
                "type": "event-actions",
                "attributes": {"displayName": "Created group", "groupDisplayNames": ["Groups"]},
            },
        ]
    }

    def test_event_actions_are_cached(self, requests_mock):
        requests_mock.get(f"{BASE}/admin/v1/orgs/{ORG}/event-actions", json=self.ACTIONS)
        hook = AtlassianAuditLogHook()
        assert hook.get_action_groups() == {"user_login": "Authentication", "group_created": "Groups"}
        hook.get_event_actions()
        assert requests_mock.call_count == 1

    def test_test_connection(self, requests_mock):
        requests_mock.get(f"{BASE}/admin/v1/orgs/{ORG}/event-actions", json=self.ACTIONS)
        assert AtlassianAuditLogHook().test_connection() == (
            True,
            f"Connected to organization {ORG}: 2 event actions readable",
        )

    def test_test_connection_reports_a_bad_key(self, requests_mock):
        requests_mock.get(
            f"{BASE}/admin/v1/orgs/{ORG}/event-actions", status_code=401, json={"errors": [{"status": "401"}]}
        )
        ok, message = AtlassianAuditLogHook().test_connection()
        assert not ok
        assert "401" in message and "API key" in message and KEY not in message

    def test_ui_field_behaviour_relabels_login_and_password(self):
        relabel = AtlassianAuditLogHook.get_ui_field_behaviour()["relabeling"]
        assert relabel["login"] == "Organization ID" and relabel["password"] == "API key"


class TestHookPacing:
    @pytest.fixture
    def clock(self, monkeypatch) -> list[float]:
        now = [1000.0]

        def fake_sleep(seconds: float) -> None:
            now[0] += seconds

        monkeypatch.setattr("airflow_provider_atlassian_qradar.atlassian_api.pacing.time.monotonic", lambda: now[0])
        monkeypatch.setattr("airflow_provider_atlassian_qradar.atlassian_api.pacing.time.sleep", fake_sleep)
        return now

    @pytest.mark.parametrize(("claimed_seconds_ago", "first_wait"), [(None, 5.1), (2.0, 3.1), (60.0, 0.0)])
    def test_the_hook_paces_from_its_callers_claim(
        self, clock, monkeypatch, requests_mock, claimed_seconds_ago, first_wait
    ):
        conn = {"conn_type": "atlassian_admin", "host": BASE, "login": ORG, "password": KEY}
        conn["extra"] = {"stream_requests_per_minute": 12}
        monkeypatch.setenv("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", json.dumps(conn))
        requests_mock.get(STREAM_URL, [{"json": page([event("a")], "c1")}, {"json": page([], None)}])
        claimed = None if claimed_seconds_ago is None else time.time() - claimed_seconds_ago
        hook = AtlassianAuditLogHook(share_claimed_at=claimed)
        assert [e["id"] for e in hook.iter_events(START, END)] == ["a"]
        assert hook.stats.pacing_seconds == pytest.approx(first_wait + 5.1, abs=0.05)
