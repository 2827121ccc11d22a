"""AtlassianAuditLogHook against the real simulator (an HTTP server on loopback): whole windows, exactly once."""

from __future__ import annotations

import itertools
import json
import logging
import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
from airflow_provider_atlassian_qradar.windows import parse_timestamp_ms, to_epoch_ms
from sandbox.atlassian_sim import SimulatorConfig, generate_events, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, atlassian_connection

API_KEY = "sim-key-DO-NOT-LEAK-0123456789"
ORG = "org-sim-1"
# A past hour, well inside retention, whose events are all processed (visible).
HOUR = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def connect(monkeypatch, base_url: str, **extra) -> None:
    """Point the default Atlassian connection at the simulator, unpaced unless asked."""
    conn_extra = {"stream_requests_per_minute": 0, "events_requests_per_minute": 0, "max_retries": 6, **extra}
    monkeypatch.setenv(ATLASSIAN_CONN_VAR, atlassian_connection(base_url, ORG, API_KEY, **conn_extra))


_CLOCK = {"value": "time"}


@pytest.fixture(autouse=True, scope="module")
def _under_each_clock(filter_clock):
    """Run every test of this module once per filter clock of the simulated API."""
    _CLOCK["value"] = filter_clock


def sim_config(events_per_hour: int, hours: int = 1, **kwargs) -> SimulatorConfig:
    defaults = {"stream_requests_per_minute": 0, "events_requests_per_minute": 0, "filter_clock": _CLOCK["value"]}
    defaults.update(kwargs)
    return SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=HOUR,
        end=HOUR + timedelta(hours=hours),
        events_per_hour=events_per_hour,
        seed=11,
        **defaults,
    )


def expected_count(config: SimulatorConfig, generated: int) -> int:
    """Events the first hour holds under the config's clock, counted from the generator, not the server."""
    if config.filter_clock == "time":
        return generated
    end_ms = to_epoch_ms(HOUR + timedelta(hours=1))
    return sum(parse_timestamp_ms(e["attributes"]["processedAt"]) < end_ms for e in generate_events(config))


def no_sleep(monkeypatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(AtlassianAuditLogHook, "_sleep", staticmethod(waits.append))
    return waits


def fetch_ids(start: datetime, end: datetime, **kwargs) -> tuple[list[str], AtlassianAuditLogHook]:
    hook = AtlassianAuditLogHook(**kwargs)
    return [event["id"] for event in hook.iter_events(start, end)], hook


class TestWholeWindows:
    @pytest.mark.parametrize("count", [0, 1, 199, 200, 201])
    def test_every_event_exactly_once(self, monkeypatch, count):
        with run_in_thread(sim_config(count)) as sim:
            connect(monkeypatch, sim.base_url)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert len(truth) == expected_count(sim.config, count)
        assert ids == truth  # same events, same (processedAt, id) order, none twice
        # One request per started page, plus at most one to see the empty end of the stream.
        assert hook.stats.requests <= math.ceil(count / 200) + 1

    def test_fifty_thousand_events(self, monkeypatch):
        with run_in_thread(sim_config(50_000)) as sim:
            connect(monkeypatch, sim.base_url, page_size=1000)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert len(truth) == expected_count(sim.config, 50_000)
        assert len(set(ids)) == len(ids) == len(truth)
        assert ids == truth
        assert hook.stats.requests <= 51

    def test_event_at_start_included_and_at_end_excluded(self, monkeypatch):
        start, end = HOUR + timedelta(minutes=10), HOUR + timedelta(minutes=20)

        def at(moment: datetime, event_id: str) -> dict:
            text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            return {
                "id": event_id,
                "type": "events",
                "attributes": {
                    "time": text,
                    "processedAt": text,
                    "action": "user_login",
                    "actor": {"id": "a1"},
                    "context": [],
                },
                "links": {"self": None},
            }

        edges = (
            at(start, "at-start"),
            at(end, "at-end"),
            at(end - timedelta(milliseconds=1), "just-before-end"),
            at(start - timedelta(milliseconds=1), "just-before-start"),
        )
        with run_in_thread(sim_config(0, extra_events=edges)) as sim:
            connect(monkeypatch, sim.base_url)
            ids, _ = fetch_ids(start, end)
        assert sorted(ids) == ["at-start", "just-before-end"]

    def test_clamped_limit_loses_nothing(self, monkeypatch):
        with run_in_thread(sim_config(450, max_page_size=50)) as sim:
            connect(monkeypatch, sim.base_url, page_size=200)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert ids == truth and len(ids) == expected_count(sim.config, 450)
        assert hook.stats.requests <= math.ceil(450 / 50) + 1

    def test_default_page_is_500_and_a_refused_size_falls_back_to_200(self, monkeypatch):
        with run_in_thread(sim_config(1200)) as sim:
            connect(monkeypatch, sim.base_url)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
            limits = [record.params["limit"] for record in sim.requests]
        assert ids == truth
        assert limits == [["500"]] * hook.stats.requests and hook.stats.requests == math.ceil(len(truth) / 500)
        with run_in_thread(sim_config(450, refuse_page_size_over=200)) as sim:
            connect(monkeypatch, sim.base_url)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
            statuses = [(record.params["limit"], record.status) for record in sim.requests]
        assert ids == truth
        assert statuses[0] == (["500"], 400) and all(s == (["200"], 200) for s in statuses[1:])
        assert len(statuses) == 1 + math.ceil(len(truth) / 200)
        assert hook.page_size == 200

    def test_filtered_query_uses_events_endpoint(self, monkeypatch):
        with run_in_thread(sim_config(300)) as sim:
            connect(monkeypatch, sim.base_url, page_size=50)
            hook = AtlassianAuditLogHook()
            events = list(hook.iter_events(HOUR, HOUR + timedelta(hours=1), action="user_login"))
            everything = sim.events_between(HOUR, HOUR + timedelta(hours=1), clock="time")  # /events: by time
            paths = {record.path.rsplit("/", 1)[-1] for record in sim.requests}
        expected = {e["id"] for e in everything if e["attributes"]["action"] == "user_login"}
        assert expected, "the generator should produce some logins"
        assert {e["id"] for e in events} == expected
        assert len(events) == len(expected)
        assert paths == {"events"}


class TestTiling:
    @pytest.fixture(scope="class")
    @classmethod
    def simulator(cls, filter_clock):
        with run_in_thread(sim_config(240, hours=3, filter_clock=filter_clock)) as sim:
            yield sim

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(cuts=st.lists(st.integers(min_value=1, max_value=3 * 3600 * 1000 - 1), min_size=1, max_size=6, unique=True))
    def test_adjacent_windows_tile_without_gap_or_overlap(self, simulator, monkeypatch, cuts):
        connect(monkeypatch, simulator.base_url)
        bounds = [HOUR] + [HOUR + timedelta(milliseconds=c) for c in sorted(cuts)] + [HOUR + timedelta(hours=3)]
        seen: list[str] = []
        for start, end in itertools.pairwise(bounds):
            ids, _ = fetch_ids(start, end)
            assert set(ids) == set(simulator.ground_truth(start, end))
            seen.extend(ids)
        assert len(seen) == len(set(seen)), "a window boundary delivered an event twice"
        assert set(seen) == set(simulator.ground_truth(HOUR, HOUR + timedelta(hours=3)))


class TestFaultSwitches:
    @pytest.mark.parametrize("headers", ["all", "retry-after", "x-retry-after", "reset-only", "none"])
    def test_429_burst(self, monkeypatch, headers):
        waits = no_sleep(monkeypatch)
        with run_in_thread(sim_config(450)) as sim:
            connect(monkeypatch, sim.base_url)
            sim.faults.update(rate_limit_burst=3, rate_limit_headers=headers, retry_after_seconds=2)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert ids == truth
        assert hook.stats.rate_limited == 3
        if headers in ("all", "retry-after", "x-retry-after"):
            assert all(2 <= w <= 2.25 for w in waits), waits
        elif headers == "none":
            assert 0.5 <= waits[0] <= 1 < waits[2]  # exponential backoff

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_server_error_burst(self, monkeypatch, status):
        no_sleep(monkeypatch)
        with run_in_thread(sim_config(450)) as sim:
            connect(monkeypatch, sim.base_url)
            sim.faults.update(server_error_burst=3, server_error_status=status)
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            assert ids == sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert hook.stats.retries == 3

    @pytest.mark.parametrize(
        "fault",
        ["reset_mid_body", "malformed_json", "empty_page_with_cursor", "repeat_previous_page", "reject_cursor"],
    )
    def test_page_faults_are_survived(self, monkeypatch, fault):
        no_sleep(monkeypatch)
        with run_in_thread(sim_config(450)) as sim:
            connect(monkeypatch, sim.base_url, page_size=200)  # several pages, so every page fault can fire
            sim.faults.update(**{fault: 1})
            ids, hook = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            truth = sim.ground_truth(HOUR, HOUR + timedelta(hours=1))
            assert not sim.faults.pending(fault), "the fault never fired: the test would prove nothing"
        assert ids == truth
        if fault == "repeat_previous_page":
            assert 0 < hook.stats.duplicates_skipped <= 200

    def test_slow_responses_are_waited_for(self, monkeypatch):
        with run_in_thread(sim_config(10)) as sim:
            connect(monkeypatch, sim.base_url)
            sim.faults.update(slow_seconds=0.5)
            ids, _ = fetch_ids(HOUR, HOUR + timedelta(hours=1))
            assert ids == sim.ground_truth(HOUR, HOUR + timedelta(hours=1))

    def test_read_timeout_is_retried(self, monkeypatch):
        no_sleep(monkeypatch)
        with run_in_thread(sim_config(10)) as sim:
            connect(monkeypatch, sim.base_url, timeout=0.3)
            sim.faults.update(slow_seconds=1.0)
            with pytest.raises(AtlassianApiError, match="could not reach the Atlassian API"):
                fetch_ids(HOUR, HOUR + timedelta(hours=1))

    def test_foreign_next_link_is_refused(self, monkeypatch):
        with run_in_thread(sim_config(450)) as sim:
            connect(monkeypatch, sim.base_url)
            sim.faults.update(foreign_next_link=1)
            with pytest.raises(AtlassianApiError, match=r"refusing to follow links\.next"):
                fetch_ids(HOUR, HOUR + timedelta(hours=1))

    def test_key_revoked_mid_window_fails_fast_without_leaking(self, monkeypatch, caplog, capsys):
        caplog.set_level(logging.DEBUG)
        with run_in_thread(sim_config(450)) as sim:
            connect(monkeypatch, sim.base_url, page_size=200)
            sim.faults.update(revoke_key_after=1)
            with pytest.raises(AtlassianApiError, match="401") as info:
                fetch_ids(HOUR, HOUR + timedelta(hours=1))
            assert len(sim.requests) == 2  # one good page, one 401, no retry of the 401
        captured = capsys.readouterr()
        for text in (str(info.value), repr(info.value), caplog.text, captured.out, captured.err):
            assert API_KEY not in text

    def test_wrong_key_and_unknown_org(self, monkeypatch):
        with run_in_thread(sim_config(5)) as sim:
            conn = {"conn_type": "atlassian_admin", "host": sim.base_url, "login": ORG, "password": "wrong"}
            monkeypatch.setenv("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", json.dumps(conn))
            ok, message = AtlassianAuditLogHook().test_connection()
            assert not ok and "API key is wrong, expired or revoked" in message
            conn.update(login="no-such-org", password=API_KEY)
            monkeypatch.setenv("AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT", json.dumps(conn))
            ok, message = AtlassianAuditLogHook().test_connection()
            assert not ok and "'no-such-org' was not found" in message
            connect(monkeypatch, sim.base_url)
            ok, message = AtlassianAuditLogHook().test_connection()
            assert ok, message
