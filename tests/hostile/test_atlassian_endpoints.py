"""The Atlassian hook against hostile and broken endpoints: real loopback servers of the tests' own.

Each test states the behaviour a careful user expects: a bounded time, bounded memory, a clear error with the
right permanence, and never the API key in any form.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import socket
import threading
import time
import traceback
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, quote_plus

import psutil
import pytest

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.atlassian_api.guard import SecretScrubber, origin
from airflow_provider_atlassian_qradar.connection_fields import ConnectionConfigError
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
from sandbox.connections import ATLASSIAN_CONN_VAR, atlassian_connection
from sandbox.faults.hostile_servers import (
    HostileApi,
    echo_authorization,
    gzip_answer,
    gzip_bomb,
    huge_body,
    json_answer,
    redirect,
    trickle,
)

ORG = "org-hostile"
#: Printable, with characters whose repr, URL and base64 forms differ from the raw key.
KEY = "ATATT3x+hostile/key=42-abcdef"
START = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=1)
EMPTY_PAGE = {"data": [], "meta": {"next": None}, "links": {}}
STREAM = f"/admin/v1/orgs/{ORG}/events-stream"


def key_forms(key: str = KEY) -> dict[str, str]:
    """The forms in which a leaked key would show up."""
    return {
        "raw": key,
        "repr-escaped": repr(key)[1:-1],
        "url-encoded": quote(key, safe=""),
        "url-encoded (plus)": quote_plus(key),
        "base64": base64.b64encode(key.encode()).decode(),
        "base64 of the header": base64.b64encode(f"Bearer {key}".encode()).decode(),
        "stripped": key.strip(),
    }


def leaks(text: str, key: str = KEY) -> list[str]:
    return [name for name, form in key_forms(key).items() if form and form in text]


def connect(monkeypatch, host: str, *, password: str = KEY, login: str = ORG, **extra) -> None:
    conn_extra = {"page_size": 3, "stream_requests_per_minute": 0, "max_retries": 2, **extra}
    monkeypatch.setenv(ATLASSIAN_CONN_VAR, atlassian_connection(host, login, password, **conn_extra))


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Record the hook's retry waits instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(AtlassianAuditLogHook, "_sleep", staticmethod(recorded.append))
    return recorded


def permanent(error: BaseException) -> bool:
    """Whether the operator fails the task at once for this error (no Airflow retries spent)."""
    return isinstance(error, ConnectionConfigError) or bool(getattr(error, "permanent", False))


#: What the hook raises: a configuration error (checked before any request) or an API error.
HOOK_ERRORS = (AtlassianApiError, ConnectionConfigError)


def walk() -> list[dict]:
    return list(AtlassianAuditLogHook().iter_events(START, END))


def everything_said(error: BaseException, caplog, capsys) -> str:
    captured = capsys.readouterr()
    return "\n".join(
        [str(error), repr(error), *traceback.format_exception(error), caplog.text, captured.out, captured.err]
    )


class TestKeyValidation:
    @pytest.mark.parametrize(
        ("password", "problem"),
        [
            (KEY + "\n", "leading or trailing whitespace"),
            (" " + KEY, "leading or trailing whitespace"),
            (KEY[:6] + " " + KEY[6:], "whitespace inside it"),
            (KEY + "\x00", "control characters"),
            (KEY + "\x7f", "control characters"),
        ],
        ids=["trailing newline", "leading space", "inner space", "NUL", "DEL"],
    )
    def test_key_with_whitespace_or_control_characters_fails_before_any_request(
        self, monkeypatch, waits, caplog, capsys, password, problem
    ):
        caplog.set_level(logging.DEBUG)
        with HostileApi(default=json_answer(200, EMPTY_PAGE)) as api:
            connect(monkeypatch, api.base_url, password=password)
            with pytest.raises(HOOK_ERRORS) as info:
                walk()
        assert api.requests == []
        assert waits == [], "a configuration error is not retried"
        assert permanent(info.value)
        assert "API key (password field)" in str(info.value) and problem in str(info.value)
        assert leaks(everything_said(info.value, caplog, capsys), password) == []


class TestHostValidation:
    def test_plain_http_to_a_non_loopback_host_is_refused_before_any_lookup(self, monkeypatch, waits):
        looked_up: list[object] = []

        def no_network(*args, **kwargs):
            looked_up.append(args[0])
            raise socket.gaierror(socket.EAI_NONAME, "lookups are disabled in this test")

        monkeypatch.setattr(socket, "getaddrinfo", no_network)
        connect(monkeypatch, "http://audit-proxy.example.com")
        with pytest.raises(HOOK_ERRORS) as info:
            walk()
        assert looked_up == [], "the key must not start on its way"
        assert permanent(info.value)
        assert "plain http" in str(info.value) and '"allow_insecure_http": true' in str(info.value)

    def test_the_explicit_opt_in_allows_it_with_a_warning(self, monkeypatch, caplog, capsys):
        caplog.set_level(logging.WARNING)
        connect(monkeypatch, "http://audit-proxy.example.com", allow_insecure_http=True)
        hook = AtlassianAuditLogHook()
        assert hook.base_url == "http://audit-proxy.example.com"
        captured = capsys.readouterr()
        assert "over plain http to http://audit-proxy.example.com" in caplog.text + captured.out + captured.err

    def test_loopback_http_stays_allowed(self, monkeypatch):
        with HostileApi(default=json_answer(200, EMPTY_PAGE)) as api:
            connect(monkeypatch, api.base_url)
            assert walk() == []
        assert len(api.requests) == 1

    def test_ftp_host_is_a_configuration_error_at_once(self, monkeypatch, waits):
        connect(monkeypatch, "ftp://files.example.com")
        with pytest.raises(HOOK_ERRORS, match=r"is not an http\(s\) URL") as info:
            walk()
        assert permanent(info.value) and waits == []

    @pytest.mark.parametrize("org_id", ["../other-org", "org?admin=1", "org#x", "a/b", "org id"])
    def test_org_id_that_would_change_the_path_is_refused(self, monkeypatch, waits, org_id):
        with HostileApi(default=json_answer(404, {"errors": [{"code": "ADMIN-404-2"}]})) as api:
            connect(monkeypatch, api.base_url, login=org_id)
            with pytest.raises(HOOK_ERRORS, match=r"Organization ID \(login field\)") as info:
                walk()
        assert api.requests == []
        assert permanent(info.value)


class TestRedirects:
    def test_a_redirect_to_another_origin_is_not_followed(self, monkeypatch, waits):
        with HostileApi(default=json_answer(200, EMPTY_PAGE)) as foreign:
            target = f"{foreign.base_url}{STREAM}?cursor=x"
            with HostileApi(default=redirect(target)) as api:
                connect(monkeypatch, api.base_url)
                with pytest.raises(AtlassianApiError) as info:
                    walk()
        assert foreign.requests == [], "nothing, key or not, goes to the redirect target"
        assert len(api.requests) == 1 and waits == []
        message = str(info.value)
        assert info.value.permanent and info.value.code == "redirect"
        assert f"302 redirecting to {foreign.base_url}" in message
        assert "?cursor" not in message and leaks(message) == []


class TestBoundedMemory:
    @staticmethod
    def _peak_rss_during(action) -> tuple[int, int, BaseException | None]:
        """Run ``action``, sampling this process's RSS every 5 ms; return (baseline, peak, error)."""
        process = psutil.Process()
        baseline = process.memory_info().rss
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        error: BaseException | None = None
        try:
            action()
        except BaseException as caught:
            error = caught
        finally:
            done.set()
            sampler.join()
        return baseline, max(peak, process.memory_info().rss), error

    def test_gzip_bomb_is_refused_with_bounded_memory(self, monkeypatch, waits, record_property):
        bomb = gzip_bomb(1 << 30)  # 1 GiB of JSON whitespace
        with HostileApi(default=gzip_answer(bomb, already_compressed=True)) as api:
            connect(monkeypatch, api.base_url)
            baseline, peak, error = self._peak_rss_during(walk)
        grown_mb = (peak - baseline) / 1e6
        record_property("gzip_bomb_peak_rss_growth_mb", round(grown_mb, 1))
        print(f"gzip bomb: {len(bomb) / 1e6:.2f} MB compressed -> 1 GiB decoded; peak RSS +{grown_mb:.1f} MB")
        assert isinstance(error, AtlassianApiError), error
        assert error.permanent and error.code == "response-too-large"
        assert "decompresses to more than 33,554,432 bytes" in str(error)
        assert len(api.requests) == 1, "a bomb is not fetched again"
        assert grown_mb < 200

    @pytest.mark.parametrize("declared", [True, False], ids=["with Content-Length", "until close"])
    def test_huge_body_is_refused_with_bounded_memory(self, monkeypatch, waits, record_property, declared):
        with HostileApi(default=huge_body(50 * 1024 * 1024, declared=declared)) as api:
            connect(monkeypatch, api.base_url)
            baseline, peak, error = self._peak_rss_during(walk)
        grown_mb = (peak - baseline) / 1e6
        record_property("huge_body_peak_rss_growth_mb", round(grown_mb, 1))
        print(f"50 MiB body ({'declared' if declared else 'undeclared'} length): peak RSS +{grown_mb:.1f} MB")
        assert isinstance(error, AtlassianApiError), error
        assert error.permanent and error.code == "response-too-large"
        assert grown_mb < 200

    def test_the_cap_is_configurable_and_a_normal_gzip_page_passes(self, monkeypatch):
        page = {"data": [], "meta": {"next": None}, "links": {}, "padding": " " * 5000}
        with HostileApi(default=gzip_answer(json.dumps(page).encode())) as api:
            connect(monkeypatch, api.base_url)
            assert walk() == []
            connect(monkeypatch, api.base_url, max_response_bytes=2000)
            with pytest.raises(AtlassianApiError, match="max_response_bytes"):
                walk()


class TestTotalDeadline:
    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("where", ["headers", "body"])
    def test_a_server_trickling_a_byte_every_3_s_hits_the_request_deadline(self, monkeypatch, waits, where):
        stop = threading.Event()
        try:
            with HostileApi(default=trickle(where, 3.0, stop)) as api:
                # The per-read timeout (10 s) never trips on a byte every 3 s; only a total deadline can.
                connect(monkeypatch, api.base_url, timeout=10, request_deadline=2, max_retries=1)
                started = time.monotonic()
                with pytest.raises(AtlassianApiError) as info:
                    walk()
                took = time.monotonic() - started
        finally:
            stop.set()
        print(f"trickle in {where}: gave up after {took:.1f} s (2 attempts, 2 s deadline each)")
        assert info.value.code == "deadline" and not info.value.permanent
        assert "request deadline of 2 s" in str(info.value) and "'request_deadline'" in str(info.value)
        assert len(api.requests) == 2

    @pytest.mark.timeout(60)
    def test_the_deadline_holds_through_an_http_proxy_too(self, monkeypatch, waits):
        stop = threading.Event()
        try:
            with HostileApi(default=trickle("headers", 3.0, stop)) as proxy:
                for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
                    monkeypatch.delenv(name, raising=False)
                monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
                connect(monkeypatch, "http://127.0.0.1:9", timeout=10, request_deadline=2, max_retries=1)
                with pytest.raises(AtlassianApiError) as info:
                    walk()
        finally:
            stop.set()
        assert info.value.code == "deadline"
        assert [request.target.startswith("http://127.0.0.1:9/") for request in proxy.requests] == [True, True]


class TestEchoedKey:
    @pytest.mark.parametrize("status", [401, 500])
    def test_a_server_echoing_the_key_never_gets_it_into_errors_or_logs(
        self, monkeypatch, waits, caplog, capsys, status
    ):
        caplog.set_level(logging.DEBUG)
        with HostileApi(default=echo_authorization(status)) as api:
            connect(monkeypatch, api.base_url)
            with pytest.raises(AtlassianApiError) as info:
                walk()
        assert api.requests[0].headers["authorization"] == f"Bearer {KEY}", "the server did see the key"
        said = everything_said(info.value, caplog, capsys)
        assert leaks(said) == []
        assert str(info.value.status) in str(info.value) and "***" in str(info.value)

    def test_the_scrubber_covers_every_form(self):
        scrub = SecretScrubber(KEY + "\n")
        for name, form in key_forms(KEY + "\n").items():
            assert leaks(scrub(f"before {form} after"), KEY + "\n") == [], name


class TestRateLimitHeaders:
    @pytest.mark.parametrize(
        "headers",
        [
            {"Retry-After": "-5"},
            {"Retry-After": "nan"},
            {"X-Retry-After": "-1"},
            {"X-RateLimit-Reset": "2020-01-01T00:00:00Z"},
        ],
        ids=["negative Retry-After", "NaN Retry-After", "negative X-Retry-After", "reset in the past"],
    )
    def test_useless_hints_fall_back_to_exponential_backoff(self, monkeypatch, waits, headers):
        script = {1: json_answer(429, {"errors": [{"code": "ADMIN-429-1"}]}, headers)}
        with HostileApi(script, default=json_answer(200, EMPTY_PAGE)) as api:
            connect(monkeypatch, api.base_url)
            assert walk() == []
        assert len(api.requests) == 2
        assert len(waits) == 1 and 0.5 <= waits[0] <= 1.0, waits  # the first exponential step, 0.5-1 s

    def test_retry_after_as_an_http_date_ending_minus_0000(self, monkeypatch, waits):
        soon = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=30)
        date = email.utils.format_datetime(soon)  # a naive datetime is written with "-0000"
        assert date.endswith("-0000")
        script = {1: json_answer(429, {}, {"Retry-After": date})}
        with HostileApi(script, default=json_answer(200, EMPTY_PAGE)) as api:
            connect(monkeypatch, api.base_url)
            assert walk() == []
        assert len(waits) == 1 and 25 <= waits[0] <= 31, waits


class TestProtocolErrors:
    def test_400_without_a_cursor_does_not_blame_the_cursor(self, monkeypatch, waits):
        body = {"errors": [{"code": "ADMIN-400-3", "title": "Invalid time date"}]}
        with HostileApi(default=json_answer(400, body)) as api:
            connect(monkeypatch, api.base_url)
            with pytest.raises(AtlassianApiError) as info:
                walk()
        assert "cursor=" not in api.requests[0].target
        assert "no page cursor was sent" in str(info.value) and "invalid page cursor" not in str(info.value)
        assert info.value.permanent

    def test_an_event_without_id_fails_the_window_at_once_naming_its_time(self, monkeypatch, waits):
        event = {"type": "events", "attributes": {"time": "2026-11-20T10:05:00.000Z", "action": "user_login"}}
        with HostileApi(default=json_answer(200, {"data": [event], "meta": {"next": None}})) as api:
            connect(monkeypatch, api.base_url)
            with pytest.raises(AtlassianApiError) as info:
                walk()
        assert info.value.permanent, "retrying re-reads the same event: it cannot help"
        assert "without an 'id'" in str(info.value) and "2026-11-20T10:05:00.000Z" in str(info.value)
        assert len(api.requests) == 1

    def test_links_next_naming_our_host_in_other_case_is_followed(self, monkeypatch):
        with HostileApi() as api:
            upper = f"http://LOCALHOST:{api.port}{STREAM}?cursor=page-2"
            ev = {"id": "e1", "type": "events", "attributes": {"time": "2026-11-20T10:05:00.000Z"}}
            api.script = {1: json_answer(200, {"data": [ev], "links": {"next": upper}})}
            api.default = json_answer(200, EMPTY_PAGE)
            connect(monkeypatch, f"http://localhost:{api.port}")
            assert [event["id"] for event in walk()] == ["e1"]
        assert "cursor=page-2" in api.requests[1].target

    @pytest.mark.parametrize(
        ("theirs", "ours", "same"),
        [
            ("https://api.atlassian.com:443/x?cursor=1", "https://api.atlassian.com", True),
            ("HTTPS://API.Atlassian.com/x", "https://api.atlassian.com", True),
            ("http://127.0.0.1:80/x", "http://127.0.0.1", True),
            ("https://api.atlassian.com:8443/x", "https://api.atlassian.com", False),
            ("http://api.atlassian.com/x", "https://api.atlassian.com", False),
            ("https://api.atlassian.com.evil.example/x", "https://api.atlassian.com", False),
        ],
    )
    def test_origins_are_normalised(self, theirs, ours, same):
        assert (origin(theirs) == origin(ours)) is same
