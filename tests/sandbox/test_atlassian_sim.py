"""Tests of the Atlassian audit-log simulator, over real HTTP with ``requests``."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.atlassian_sim import (
    ACTIONS,
    HOSTILE_STRINGS,
    RATE_LIMIT_HEADER_MODES,
    Faults,
    Simulator,
    SimulatorConfig,
    generate_events,
    run_in_thread,
)

ORG = "org-1"
KEY = "sim-key"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXED_START = datetime(2026, 1, 1, tzinfo=timezone.utc)

StartSim = Callable[..., Simulator]


def make_config(**overrides: Any) -> SimulatorConfig:
    """A small, fully processed, unthrottled range ending two hours ago (override anything)."""
    # Hour-aligned, so every hour of the range is complete and counts are exact.
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    settings: dict[str, Any] = {
        "org_id": ORG,
        "api_key": KEY,
        "start": now - timedelta(hours=6),
        "end": now - timedelta(hours=2),
        "events_per_hour": 60,
        "seed": 1,
        "stream_requests_per_minute": 0,
        "events_requests_per_minute": 0,
    }
    settings.update(overrides)
    return SimulatorConfig(**settings)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def explicit_event(event_id: str, time_text: str, processed_text: str | None = None, **attrs: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "time": time_text,
        "action": "user_login",
        "actor": {"id": "712020:explicit", "name": "Explicit Person"},
        "context": [],
        **attrs,
    }
    if processed_text:
        attributes["processedAt"] = processed_text
    return {"id": event_id, "type": "events", "attributes": attributes, "links": {"self": None}}


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    started: list[Simulator] = []

    def start(**overrides: Any) -> Simulator:
        sim = run_in_thread(make_config(**overrides))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(start_sim: StartSim) -> Simulator:
    return start_sim()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"
    yield session
    session.close()


def stream_url(sim: Simulator) -> str:
    return sim.url(f"/admin/v1/orgs/{ORG}/events-stream")


def events_url(sim: Simulator) -> str:
    return sim.url(f"/admin/v1/orgs/{ORG}/events")


def walk_stream(
    http: requests.Session, sim: Simulator, **params: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow meta.next until an empty page; return (events, pages)."""
    pages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    response = http.get(stream_url(sim), params=params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        events.extend(page["data"])
        if not page["data"] or page["meta"]["next"] is None:
            return events, pages
        response = http.get(stream_url(sim), params={"cursor": page["meta"]["next"], "limit": params.get("limit")})


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error: dict[str, Any] = body["errors"][0]
    uuid.UUID(error["id"])
    assert error["status"] == str(response.status_code)
    assert error["title"] and error["detail"]
    return error


class TestGenerator:
    def test_same_seed_same_bytes_and_other_seed_differs(self) -> None:
        config = make_config(start=FIXED_START, end=FIXED_START + timedelta(hours=2), hostile_ratio=0.1)
        first = json.dumps(generate_events(config), ensure_ascii=False)
        assert first == json.dumps(generate_events(config), ensure_ascii=False)
        other = make_config(start=FIXED_START, end=FIXED_START + timedelta(hours=2), hostile_ratio=0.1, seed=2)
        assert json.dumps(generate_events(other), ensure_ascii=False) != first

    def test_exact_count_per_hour_and_half_open_range(self) -> None:
        events = generate_events(make_config(start=FIXED_START, end=FIXED_START + timedelta(hours=3)))
        assert len(events) == 180
        for event in events:
            moment = datetime.fromisoformat(event["attributes"]["time"].replace("Z", "+00:00"))
            assert FIXED_START <= moment < FIXED_START + timedelta(hours=3)

    def test_an_hour_is_the_same_whatever_range_contains_it(self) -> None:
        short = generate_events(make_config(start=FIXED_START, end=FIXED_START + timedelta(hours=1)))
        long = generate_events(
            make_config(start=FIXED_START - timedelta(hours=2), end=FIXED_START + timedelta(hours=2))
        )
        long_ids = {event["id"] for event in long}
        assert {event["id"] for event in short} <= long_ids

    def test_shape_precision_lag_and_ids(self) -> None:
        config = make_config(start=FIXED_START, end=FIXED_START + timedelta(hours=5), processing_lag_max_seconds=30)
        events = generate_events(config)
        precisions = set()
        for event in events:
            assert uuid.UUID(event["id"]).version == 4
            assert event["type"] == "events"
            attributes = event["attributes"]
            time_text = attributes["time"]
            assert time_text.endswith("Z")
            precisions.add(len(time_text.split(".")[1]) - 1 if "." in time_text else 0)
            occurred = datetime.fromisoformat(time_text.replace("Z", "+00:00"))
            processed = datetime.fromisoformat(attributes["processedAt"].replace("Z", "+00:00"))
            assert timedelta(0) <= processed - occurred <= timedelta(seconds=30.001)
            assert attributes["actor"]["id"]
            assert isinstance(attributes["context"], list)
            assert event["links"]["self"].endswith(f"/orgs/{ORG}/events/{event['id']}")
        assert precisions == {0, 3, 6}
        assert [event["attributes"]["processedAt"] for event in events] == sorted(
            event["attributes"]["processedAt"] for event in events
        )
        actions = {event["attributes"]["action"] for event in events}
        assert actions <= {action.action_id for action in ACTIONS} and len(actions) >= 12
        actor_ids = {event["attributes"]["actor"]["id"] for event in events}
        assert any(actor_id.startswith("712020:") for actor_id in actor_ids)
        assert actor_ids & {"jira", "confluence", "bitbucket", "loom", "guard_detect"}
        ips = {event["attributes"].get("location", {}).get("ip") for event in events} - {None}
        assert any(":" in ip for ip in ips) and any("." in ip for ip in ips)
        assert any("onBehalfOf" in event["attributes"]["actor"] for event in events)
        assert any("auth" in event["attributes"]["actor"] for event in events)

    def test_hostile_ratio(self) -> None:
        assert any(text.startswith("x\nLEEF:2.0|") for text in HOSTILE_STRINGS)
        assert any(len(text) >= 20_000 for text in HOSTILE_STRINGS)
        window = {"start": FIXED_START, "end": FIXED_START + timedelta(hours=1)}
        hostile = generate_events(make_config(hostile_ratio=1.0, **window))
        clean = generate_events(make_config(hostile_ratio=0.0, **window))
        assert [event["id"] for event in hostile] == [event["id"] for event in clean]
        for event in hostile:
            text = json.dumps(event, ensure_ascii=False)
            assert any(json.dumps(s, ensure_ascii=False)[1:-1] in text for s in HOSTILE_STRINGS)
        for event in clean:
            assert "LEEF" not in json.dumps(event) and "\\u001b" not in json.dumps(event)

    def test_extra_events_are_included(self) -> None:
        extra = explicit_event(str(uuid.uuid4()), "2026-01-01T00:30:00Z")
        events = generate_events(
            make_config(start=FIXED_START, end=FIXED_START + timedelta(hours=1), extra_events=(extra,))
        )
        assert extra["id"] in {event["id"] for event in events}
        assert len(events) == 61

    def test_config_rejects_naive_and_reversed_ranges(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            make_config(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
        with pytest.raises(ValueError, match="before end"):
            make_config(start=FIXED_START, end=FIXED_START)


class TestStream:
    def test_walk_equals_ground_truth_in_processed_order(self, sim: Simulator, http: requests.Session) -> None:
        events, pages = walk_stream(http, sim, limit=70)
        ids = [event["id"] for event in events]
        truth = sim.ground_truth(sim.config.start, sim.config.end)
        assert ids == truth and len(ids) == 240
        keys = [(event["attributes"]["processedAt"], event["id"]) for event in events]
        assert keys == sorted(keys)
        # A cursor on the last non-empty page too, then an empty page with next null.
        assert [len(page["data"]) for page in pages] == [70, 70, 70, 30, 0]
        assert pages[-2]["meta"]["next"] and pages[-2]["links"]["next"].startswith(sim.base_url)
        assert pages[-1]["meta"] == {"next": None, "page_size": 70}
        assert "next" not in pages[-1]["links"]
        assert events == sim.events_between(sim.config.start, sim.config.end)

    def test_from_to_inclusive_on_event_time_floored_to_ms(self, start_sim: StartSim, http: requests.Session) -> None:
        base = ms(datetime.now(timezone.utc) - timedelta(hours=3))
        extras = (
            explicit_event("e-before", iso_ms(base - 1)),
            explicit_event("e-from", iso_ms(base)),
            explicit_event("e-to-micro", iso_ms(base + 1000)[:-1] + "999Z"),  # .xxx999 floors to base+1000
            explicit_event("e-after", iso_ms(base + 1001)),
        )
        sim = start_sim(events_per_hour=0, extra_events=extras)
        events, _ = walk_stream(http, sim, **{"from": base, "to": base + 1000})
        assert sorted(event["id"] for event in events) == ["e-from", "e-to-micro"]
        listed = http.get(events_url(sim), params={"from": base, "to": base + 1000}).json()["data"]
        assert [event["id"] for event in listed] == ["e-to-micro", "e-from"]

    def test_cursor_carries_window_and_sort_order(self, sim: Simulator, http: requests.Session) -> None:
        start, end = sim.config.start + timedelta(hours=1), sim.config.start + timedelta(hours=2)
        window: dict[str, Any] = {"from": ms(start), "to": ms(end) - 1, "sortOrder": "desc", "limit": 25}
        first = http.get(stream_url(sim), params=window).json()
        ids = [event["id"] for event in first["data"]]
        cursor = first["meta"]["next"]
        while cursor:
            page = http.get(stream_url(sim), params={"cursor": cursor, "limit": 25}).json()
            ids += [event["id"] for event in page["data"]]
            cursor = page["meta"]["next"] if page["data"] else None
        assert ids == list(reversed(sim.ground_truth(start, end)))

    def test_limit_is_clamped_and_reported(self, start_sim: StartSim, http: requests.Session) -> None:
        sim = start_sim(max_page_size=50, default_page_size=20)
        default = http.get(stream_url(sim)).json()
        assert default["meta"]["page_size"] == 20 and len(default["data"]) == 20
        clamped = http.get(stream_url(sim), params={"limit": 5000}).json()
        assert clamped["meta"]["page_size"] == 50 and len(clamped["data"]) == 50
        assert http.get(events_url(sim), params={"limit": 5000}).json()["meta"]["page_size"] == 50

    def test_empty_page_cursor_keeps_polling(self, start_sim: StartSim, http: requests.Session) -> None:
        sim = start_sim(empty_page_cursor=True)
        events, pages = walk_stream(http, sim, limit=1000)
        assert len(events) == 240
        assert pages[-1]["data"] == [] and pages[-1]["meta"]["next"]
        again = http.get(stream_url(sim), params={"cursor": pages[-1]["meta"]["next"]}).json()
        assert again["data"] == [] and again["meta"]["next"]

    @pytest.mark.parametrize(
        ("params", "code"),
        [
            ({"cursor": "not-a-cursor"}, "ADMIN-400-1"),
            ({"cursor": "eyJ2IjoxfQ"}, "ADMIN-400-1"),  # valid base64 JSON, not our shape
            ({"from": "yesterday"}, "ADMIN-400-3"),
            ({"from": 2000, "to": 1000}, "ADMIN-400-3"),
            ({"sortOrder": "sideways"}, "ADMIN-400-4"),
            ({"limit": "0"}, "ADMIN-400-4"),
        ],
    )
    def test_bad_parameters(self, sim: Simulator, http: requests.Session, params: dict[str, Any], code: str) -> None:
        response = http.get(stream_url(sim), params=params)
        assert response.status_code == 400
        assert error_of(response)["code"] == code

    def test_events_cursor_is_rejected_by_the_stream(self, sim: Simulator, http: requests.Session) -> None:
        token = http.get(events_url(sim), params={"limit": 2}).json()["meta"]["next"]
        assert error_of(http.get(stream_url(sim), params={"cursor": token}))["code"] == "ADMIN-400-1"


class TestEvents:
    def test_newest_first_without_processed_at(self, sim: Simulator, http: requests.Session) -> None:
        ids: list[str] = []
        url: str | None = events_url(sim)
        params: dict[str, Any] | None = {"limit": 100}
        while url:
            page = http.get(url, params=params).json()
            ids += [event["id"] for event in page["data"]]
            for event in page["data"]:
                assert "processedAt" not in event["attributes"]
            url, params = page["links"].get("next"), None
        assert page["meta"]["next"] is None
        by_time = sorted(
            sim.events_between(sim.config.start, sim.config.end),
            key=lambda event: (datetime.fromisoformat(event["attributes"]["time"].replace("Z", "+00:00")), event["id"]),
            reverse=True,
        )
        assert ids == [event["id"] for event in by_time]

    def test_filters_must_be_resent_with_the_cursor(self, sim: Simulator, http: requests.Session) -> None:
        everything = sim.events_between(sim.config.start, sim.config.end)
        logins = {event["id"] for event in everything if event["attributes"]["action"] == "user_login"}
        first = http.get(events_url(sim), params={"action": "user_login", "limit": "10"}).json()
        assert {event["attributes"]["action"] for event in first["data"]} == {"user_login"}
        # Following links.next (or a bare cursor) drops the filter, as ACCESS-1603 reports.
        dropped = http.get(first["links"]["next"]).json()["data"]
        assert {event["attributes"]["action"] for event in dropped} != {"user_login"}
        collected = [event["id"] for event in first["data"]]
        cursor = first["meta"]["next"]
        while cursor:
            page = http.get(events_url(sim), params={"action": "user_login", "limit": 10, "cursor": cursor}).json()
            collected += [event["id"] for event in page["data"]]
            cursor = page["meta"]["next"]
        assert len(collected) == len(set(collected)) and set(collected) == logins

    def test_actor_ip_product_and_q_filters(self, sim: Simulator, http: requests.Session) -> None:
        everything = sim.events_between(sim.config.start, sim.config.end)
        sample = next(event for event in everything if "ip" in event["attributes"].get("location", {}))
        actor_id, ip = sample["attributes"]["actor"]["id"], sample["attributes"]["location"]["ip"]

        def listed(**params: Any) -> set[str]:
            return {event["id"] for event in http.get(events_url(sim), params={"limit": 1000, **params}).json()["data"]}

        assert listed(actor=[actor_id, "nobody"]) == {
            event["id"] for event in everything if event["attributes"]["actor"]["id"] == actor_id
        }
        assert sample["id"] in listed(ip=[ip]) and listed(ip=["0.0.0.0"]) == set()
        jira = listed(product=["JIRA"])
        assert jira and jira <= {event["id"] for event in everything if "jira" in json.dumps(event).lower()}
        name = sample["attributes"]["actor"]["name"]
        assert sample["id"] in listed(q=name.upper())
        assert listed(q="no-such-text-anywhere") == set()

    def test_event_by_id_and_event_actions(self, sim: Simulator, http: requests.Session) -> None:
        event_id = sim.ground_truth(sim.config.start, sim.config.end)[0]
        body = http.get(sim.url(f"/admin/v1/orgs/{ORG}/events/{event_id}")).json()
        expected = sim.event(event_id)
        del expected["attributes"]["processedAt"]
        assert body == {"data": expected}
        missing = http.get(sim.url(f"/admin/v1/orgs/{ORG}/events/{uuid.uuid4()}"))
        assert missing.status_code == 404 and error_of(missing)["code"] == "ADMIN-404-4"
        actions = http.get(sim.url(f"/admin/v1/orgs/{ORG}/event-actions")).json()["data"]
        assert {item["id"] for item in actions} == {action.action_id for action in ACTIONS}
        assert all(item["type"] == "event-actions" and item["attributes"]["displayName"] for item in actions)


class TestErrors:
    @pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {KEY}", KEY])
    def test_bad_or_missing_key_is_401(self, sim: Simulator, header: str | None) -> None:
        headers = {"Authorization": header} if header else {}
        response = requests.get(stream_url(sim), timeout=5, headers=headers)
        assert response.status_code == 401 and error_of(response)["code"] == "ADMIN-401-1"
        assert KEY not in response.text

    def test_unknown_org_and_path(self, sim: Simulator, http: requests.Session) -> None:
        response = http.get(sim.url("/admin/v1/orgs/other-org/events-stream"))
        assert response.status_code == 404 and error_of(response)["code"] == "ADMIN-404-2"
        response = http.get(sim.url(f"/admin/v1/orgs/{ORG}/nothing-here"))
        assert response.status_code == 404 and error_of(response)["code"] == "ADMIN-404-1"
        response = http.post(stream_url(sim))
        assert response.status_code == 405 and error_of(response)["code"] == "ADMIN-405-1"

    def test_request_log_and_admin_endpoints(self, sim: Simulator, http: requests.Session) -> None:
        http.get(stream_url(sim), params={"limit": 5, "from": 1})
        requests.get(stream_url(sim), timeout=5)
        records = sim.requests
        assert [(record.method, record.status) for record in records] == [("GET", 200), ("GET", 401)]
        assert records[0].path == f"/admin/v1/orgs/{ORG}/events-stream"
        assert records[0].params == {"limit": ["5"], "from": ["1"]}
        stats = requests.get(sim.url("/_sim/stats"), timeout=5).json()
        assert stats["by_path"][records[0].path] == {"200": 1, "401": 1}
        start, end = sim.config.start + timedelta(hours=1), sim.config.start + timedelta(hours=2)
        truth = requests.get(sim.url("/_sim/ground-truth"), timeout=5, params={"from": ms(start), "to": ms(end)}).json()
        assert truth["ids"] == sim.ground_truth(start, end) and len(truth["ids"]) == 60
        sim.reset_counters()
        assert sim.requests == []


class TestRateLimits:
    def test_sliding_window_429_with_headers(self, start_sim: StartSim, http: requests.Session) -> None:
        sim = start_sim(stream_requests_per_minute=3, events_requests_per_minute=2)
        remaining = [http.get(stream_url(sim)).headers["X-RateLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        limited = http.get(stream_url(sim))
        assert limited.status_code == 429 and error_of(limited)["code"] == "ADMIN-429-1"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.headers["X-Retry-After"] == limited.headers["Retry-After"]
        assert limited.headers["X-RateLimit-Limit"] == "3" and limited.headers["X-RateLimit-Remaining"] == "0"
        reset = datetime.strptime(limited.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%SZ")
        assert reset.replace(tzinfo=timezone.utc) > datetime.now(timezone.utc)
        # The /events window is separate; /_sim is never limited.
        assert http.get(events_url(sim)).status_code == 200
        assert requests.get(sim.url("/_sim/stats"), timeout=5).status_code == 200
        sim.reset_counters()
        assert http.get(stream_url(sim)).status_code == 200

    @pytest.mark.parametrize("mode", RATE_LIMIT_HEADER_MODES)
    def test_forced_429_header_modes(self, sim: Simulator, http: requests.Session, mode: str) -> None:
        sim.faults.update(rate_limit_burst=2, rate_limit_headers=mode, retry_after_seconds=2)
        first, second, third = (http.get(stream_url(sim)) for _ in range(3))
        assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
        assert error_of(first)["code"] == "ADMIN-429-1"
        expected = {
            "all": {"Retry-After", "X-Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"},
            "retry-after": {"Retry-After"},
            "x-retry-after": {"X-Retry-After"},
            "reset-only": {"X-RateLimit-Reset"},
            "none": set(),
        }[mode]
        present = {
            name for name in expected | {"Retry-After", "X-Retry-After", "X-RateLimit-Reset"} if name in first.headers
        }
        assert present == expected
        if "Retry-After" in expected:
            assert first.headers["Retry-After"] == "2"
        if "X-RateLimit-Reset" in expected:
            reset = datetime.strptime(first.headers["X-RateLimit-Reset"], "%Y-%m-%dT%H:%M:%SZ")
            ahead = reset.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)
            assert timedelta(seconds=1) <= ahead <= timedelta(seconds=4)


class TestFaults:
    def test_server_error_burst(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.update(server_error_burst=2, server_error_status=502)
        statuses = [http.get(stream_url(sim)).status_code for _ in range(3)]
        assert statuses == [502, 502, 200]
        sim.faults.server_error_burst = 1
        failing = http.get(events_url(sim))
        assert failing.status_code == 502 and error_of(failing)["code"] == "ADMIN-500-1"

    def test_forbidden(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.forbidden = 1
        response = http.get(stream_url(sim))
        assert response.status_code == 403 and error_of(response)["code"] == "ADMIN-403-3"
        assert http.get(stream_url(sim)).status_code == 200

    def test_reset_mid_body(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.reset_mid_body = 1
        with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            http.get(stream_url(sim), params={"limit": 100})
        assert http.get(stream_url(sim)).status_code == 200

    def test_slow_seconds(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.slow_seconds = 0.3
        started = time.monotonic()
        assert http.get(stream_url(sim)).status_code == 200
        assert time.monotonic() - started >= 0.3
        with pytest.raises(requests.exceptions.Timeout):
            http.get(stream_url(sim), timeout=0.1)
        sim.faults.slow_seconds = 0
        started = time.monotonic()
        requests.get(sim.url("/_sim/stats"), timeout=5)
        assert time.monotonic() - started < 0.3

    def test_malformed_json(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.malformed_json = 1
        broken = http.get(stream_url(sim))
        assert broken.status_code == 200
        with pytest.raises(ValueError):
            json.loads(broken.text)
        assert http.get(stream_url(sim)).json()["data"]

    def test_empty_page_with_cursor_continues_correctly(self, sim: Simulator, http: requests.Session) -> None:
        truth = sim.ground_truth(sim.config.start, sim.config.end)
        first = http.get(stream_url(sim), params={"limit": 100}).json()
        sim.faults.empty_page_with_cursor = 1
        empty = http.get(stream_url(sim), params={"cursor": first["meta"]["next"]}).json()
        assert empty["data"] == [] and empty["meta"]["next"]
        events, _ = walk_stream(http, sim, cursor=empty["meta"]["next"], limit=100)
        assert [event["id"] for event in first["data"] + events] == truth

    def test_repeat_previous_page_duplicates_without_loss(self, sim: Simulator, http: requests.Session) -> None:
        truth = sim.ground_truth(sim.config.start, sim.config.end)
        first = http.get(stream_url(sim), params={"limit": 100}).json()
        sim.faults.repeat_previous_page = 1
        repeated = http.get(stream_url(sim), params={"cursor": first["meta"]["next"], "limit": 100}).json()
        assert repeated["data"] == first["data"]
        events, _ = walk_stream(http, sim, cursor=repeated["meta"]["next"], limit=100)
        assert [event["id"] for event in first["data"] + events] == truth
        assert sim.faults.repeat_previous_page == 0

    def test_repeat_previous_page_on_events(self, sim: Simulator, http: requests.Session) -> None:
        first = http.get(events_url(sim), params={"limit": 30}).json()
        second = http.get(events_url(sim), params={"limit": 30, "cursor": first["meta"]["next"]}).json()
        sim.faults.repeat_previous_page = 1
        repeated = http.get(events_url(sim), params={"limit": 30, "cursor": second["meta"]["next"]}).json()
        assert repeated["data"] == second["data"]

    def test_reject_cursor(self, sim: Simulator, http: requests.Session) -> None:
        token = http.get(stream_url(sim), params={"limit": 10}).json()["meta"]["next"]
        sim.faults.reject_cursor = 1
        assert http.get(stream_url(sim)).status_code == 200  # no cursor: not affected
        rejected = http.get(stream_url(sim), params={"cursor": token})
        assert rejected.status_code == 400 and error_of(rejected)["code"] == "ADMIN-400-1"
        assert http.get(stream_url(sim), params={"cursor": token}).status_code == 200

    def test_foreign_next_link(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.foreign_next_link = 1
        page = http.get(events_url(sim), params={"limit": 10}).json()
        assert page["links"]["next"].startswith("https://evil.example.net/") and "next" not in page["meta"]
        normal = http.get(events_url(sim), params={"limit": 10}).json()
        assert normal["links"]["next"].startswith(sim.base_url) and normal["meta"]["next"]

    def test_revoke_key_after(self, sim: Simulator, http: requests.Session) -> None:
        sim.faults.revoke_key_after = 2
        statuses = [http.get(stream_url(sim)).status_code for _ in range(4)]
        assert statuses == [200, 200, 401, 401]
        sim.faults.revoke_key_after = None
        assert http.get(stream_url(sim)).status_code == 200

    def test_faults_over_http_and_sim_paths_unaffected(self, sim: Simulator, http: requests.Session) -> None:
        reply = requests.post(sim.url("/_sim/faults"), timeout=5, json={"server_error_burst": 1, "slow_seconds": 0})
        assert reply.status_code == 200 and reply.json()["faults"]["server_error_burst"] == 1
        assert requests.get(sim.url("/_sim/stats"), timeout=5).status_code == 200
        assert sim.faults.server_error_burst == 1
        assert http.get(stream_url(sim)).status_code == 503
        assert requests.post(sim.url("/_sim/faults"), timeout=5, json={"no_such_fault": 1}).status_code == 400
        with pytest.raises(ValueError, match="rate_limit_headers"):
            Faults().update(rate_limit_headers="sometimes")


class TestRetentionAndVisibility:
    def test_retention(self, start_sim: StartSim, http: requests.Session) -> None:
        now = datetime.now(timezone.utc)
        hour = now.replace(minute=0, second=0, microsecond=0)
        sim = start_sim(
            start=hour - timedelta(days=12), end=hour - timedelta(days=8), events_per_hour=2, retention_days=10
        )
        cutoff = now - timedelta(days=10)
        events, _ = walk_stream(http, sim, limit=1000, **{"from": ms(now - timedelta(days=30))})
        times = [datetime.fromisoformat(event["attributes"]["time"].replace("Z", "+00:00")) for event in events]
        assert times and min(times) >= cutoff - timedelta(seconds=1)
        # 47 or 48 whole hours inside retention at 2 events/hour, plus part of the hour at the cutoff.
        assert 94 <= len(events) <= 98
        assert len(generate_events(sim.config)) == 4 * 24 * 2
        assert [event["id"] for event in events] == sim.ground_truth(sim.config.start, sim.config.end)
        old = {"from": ms(hour - timedelta(days=12)), "to": ms(hour - timedelta(days=11))}
        assert http.get(stream_url(sim), params=old).json()["data"] == []
        assert http.get(events_url(sim), params=old).json()["data"] == []

    def test_unprocessed_events_are_invisible(self, start_sim: StartSim, http: requests.Session) -> None:
        now = datetime.now(timezone.utc)
        pending = explicit_event(
            "pending", iso_ms(ms(now - timedelta(minutes=1))), iso_ms(ms(now + timedelta(hours=1)))
        )
        done = explicit_event("done", iso_ms(ms(now - timedelta(minutes=2))), iso_ms(ms(now - timedelta(minutes=1))))
        sim = start_sim(events_per_hour=0, extra_events=(pending, done))
        window = (now - timedelta(hours=1), now + timedelta(hours=1))
        assert sim.ground_truth(*window) == ["done"]
        events, _ = walk_stream(http, sim)
        assert [event["id"] for event in events] == ["done"]
        assert [event["id"] for event in http.get(events_url(sim)).json()["data"]] == ["done"]
        assert http.get(sim.url(f"/admin/v1/orgs/{ORG}/events/pending")).status_code == 404
        assert sim.event("pending")["id"] == "pending"

    def test_visibility_can_be_switched_off(self, start_sim: StartSim, http: requests.Session) -> None:
        now = datetime.now(timezone.utc)
        sim = start_sim(
            start=now - timedelta(minutes=30), end=now + timedelta(minutes=30), visible_only_when_processed=False
        )
        events, _ = walk_stream(http, sim, limit=1000)
        assert len(events) == len(generate_events(sim.config)) > 0
        latest = max(event["attributes"]["processedAt"] for event in events)
        assert datetime.fromisoformat(latest.replace("Z", "+00:00")) > datetime.now(timezone.utc)


class TestFilterClockAndLateTail:
    def test_processed_clock_filters_on_processed_at(self, start_sim: StartSim, http: requests.Session) -> None:
        base = ms(datetime.now(timezone.utc) - timedelta(hours=3))
        extras = (
            # happened before the window, processed inside it: returned under "processed" only
            explicit_event("early-in", iso_ms(base - 5000), iso_ms(base + 10)),
            # happened inside, processed after: returned under "time" only
            explicit_event("in-late", iso_ms(base + 500), iso_ms(base + 5000)),
            explicit_event("both-in", iso_ms(base + 100), iso_ms(base + 200)),
        )
        window = {"from": base, "to": base + 1000}
        by_clock = {}
        for clock in ("time", "processed"):
            sim = start_sim(events_per_hour=0, extra_events=extras, filter_clock=clock)
            by_clock[clock] = sorted(event["id"] for event in walk_stream(http, sim, **window)[0])
            start = datetime.fromtimestamp(base / 1000, timezone.utc)
            assert sorted(sim.ground_truth(start, start + timedelta(milliseconds=1001))) == by_clock[clock]
            # /events has no processedAt and keeps filtering on event time
            listed = http.get(events_url(sim), params=window).json()["data"]
            assert sorted(event["id"] for event in listed) == ["both-in", "in-late"]
        assert by_clock == {"time": ["both-in", "in-late"], "processed": ["both-in", "early-in"]}

    def test_processed_clock_tiles_the_log(self, start_sim: StartSim, http: requests.Session) -> None:
        sim = start_sim(filter_clock="processed", processing_lag_max_seconds=1800)
        cuts = [sim.config.start + timedelta(minutes=37 * i) for i in range(9)]
        seen: list[str] = []
        for start, end in itertools.pairwise(cuts):
            seen += [e["id"] for e in walk_stream(http, sim, **{"from": ms(start), "to": ms(end) - 1})[0]]
        assert len(seen) == len(set(seen))
        assert set(seen) == set(sim.ground_truth(cuts[0], cuts[-1]))

    def test_late_tail_changes_only_when_switched_on(self) -> None:
        window = {"start": FIXED_START, "end": FIXED_START + timedelta(hours=4)}
        plain = generate_events(make_config(**window))
        assert generate_events(make_config(late_fraction=0.0, **window)) == plain
        tailed = generate_events(make_config(late_fraction=0.2, late_lag_seconds=(7200, 9000), **window))
        lags = [
            (
                datetime.fromisoformat(e["attributes"]["processedAt"].replace("Z", "+00:00"))
                - datetime.fromisoformat(e["attributes"]["time"].replace("Z", "+00:00"))
            ).total_seconds()
            for e in tailed
        ]
        late = [lag for lag in lags if lag >= 7200]
        assert 0.1 < len(late) / len(lags) < 0.3
        assert all(lag <= 9000 + 1 for lag in late) and all(lag <= 601 for lag in lags if lag < 7200)

    def test_visibility_delay_hides_just_processed_events(self, start_sim: StartSim, http: requests.Session) -> None:
        now = datetime.now(timezone.utc)
        recent = explicit_event(
            "recent", iso_ms(ms(now - timedelta(seconds=30))), iso_ms(ms(now - timedelta(seconds=5)))
        )
        older = explicit_event("older", iso_ms(ms(now - timedelta(minutes=5))), iso_ms(ms(now - timedelta(minutes=2))))
        sim = start_sim(events_per_hour=0, extra_events=(recent, older), visibility_delay_seconds=60)
        assert [event["id"] for event in walk_stream(http, sim)[0]] == ["older"]

    def test_config_rejects_unknown_clock_and_bad_tail(self) -> None:
        with pytest.raises(ValueError, match="filter_clock"):
            make_config(filter_clock="wall")
        with pytest.raises(ValueError, match="late_fraction"):
            make_config(late_fraction=1.5)
        with pytest.raises(ValueError, match="late_lag_seconds"):
            make_config(late_lag_seconds=(10, 5))


class TestCli:
    def test_starts_prints_answers_and_exits_on_sigterm(self) -> None:
        command = [
            sys.executable, "-m", "sandbox.atlassian_sim", "--port", "0", "--org-id", "demo-org",
            "--api-key", "demo-key", "--days", "1", "--events-per-hour", "10", "--seed", "7",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            announced = json.loads(process.stdout.readline())
            # 24 h ending now touch 25 hour buckets, two of them partial: about 240 events, a few more or less.
            assert announced["org_id"] == "demo-org" and 220 <= announced["events"] <= 260
            base = announced["base_url"]
            response = requests.get(
                f"{base}/admin/v1/orgs/demo-org/events-stream",
                headers={"Authorization": "Bearer demo-key"},
                params={"limit": 5},
                timeout=5,
            )
            assert response.status_code == 200 and len(response.json()["data"]) == 5
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
