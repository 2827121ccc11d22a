"""Hostile input end to end: 100,000 events whose strings come from Hypothesis, through the operator to syslog-ng.

Every received frame must parse to exactly one LEEF event with the right eventId and only schema keys: no
string may split a frame, merge two, forge a key or a header field.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar.leef import is_schema_key
from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from sandbox.atlassian_sim import HOSTILE_STRINGS, SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.faults.environment import ORG
from sandbox.faults.runner import window_start
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng
from sandbox.state_store import DictStore

pytestmark = pytest.mark.faults

EVENT_COUNT = 100_000
API_KEY = "hostile-input-key"
#: Fragments that mean something to syslog, LEEF or a terminal, mixed into the generated text.
TOKENS = (
    "\n",
    "\r",
    "\r\n",
    "\t",
    "|",
    "=",
    "\\",
    "\\t",
    "\\n",
    "\x00",
    "\x85",
    "\u2028",
    "\u2029",
    "\x1b[2J",
    "LEEF:2.0|Atlassian|Organization Audit Log|1|user_login|x09|",
    "\tsev=10",
    "\teventId=forged",
    "<13>1 - ",
    "sev=1\tusrName=root",
    "\ufeff",
    "\u202e",
    "%s%n",
    "${jndi:ldap://x}",
    *HOSTILE_STRINGS,
)


def hostile_text() -> st.SearchStrategy[str]:
    """Arbitrary Unicode (control characters included) interleaved with the tokens above."""
    piece = st.one_of(st.text(max_size=40), st.sampled_from(TOKENS), st.characters(max_codepoint=0x9F))
    return st.lists(piece, min_size=1, max_size=8).map("".join)


def hostile_pool() -> list[str]:
    """Strings drawn by Hypothesis (a thousand examples of up to 30 strings each)."""
    pool: list[str] = []

    @settings(
        max_examples=1000,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(hostile_text(), min_size=1, max_size=30))
    def collect(strings: list[str]) -> None:
        pool.extend(strings)

    collect()
    return pool


def hostile_events(pool: list[str], count: int, first_ms: int) -> list[dict[str, Any]]:
    """``count`` API-shaped events spread over one hour, every string field (and some keys) from ``pool``."""
    size = len(pool)
    events = []
    for index in range(count):

        def pick(slot: int, index: int = index) -> str:
            return pool[(index * 7919 + slot * 104729) % size]

        event_ms = first_ms + index * 3_600_000 // count
        attributes: dict[str, Any] = {
            "time": _iso(event_ms),
            "action": pick(0) if index % 10 == 0 else "user_login",
            "actor": {
                "id": pick(1),
                "name": pick(2),
                "email": pick(3),
                "auth": {"authType": "api-token", "tokenId": pick(4), "tokenLabel": pick(5)},
            },
            "context": [{"id": pick(6), "type": pick(7), "attributes": {"name": pick(8), pick(9): pick(10)}}],
            "container": [{"id": "site-1", "type": "sites", "attributes": {"siteHostName": pick(11)}}],
            "location": {"ip": pick(12) if index % 3 else "203.0.113.7", "city": pick(13), "countryName": pick(14)},
            pick(15): pick(16),  # an attribute no schema knows: its key is data and must not become a LEEF key
        }
        events.append(
            {
                "id": str(uuid.UUID(int=index + 1)),
                "type": "events",
                "attributes": attributes,
                "message": {"content": pick(17), "format": pick(18)},
                "links": {"self": pick(19)},
                pick(20): pick(21),
            }
        )
    return events


def _iso(epoch_ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class TestHostileInput:
    def test_100k_hostile_events_arrive_as_exactly_one_frame_each(self, tmp_path, monkeypatch):
        require_syslog_ng()
        pool = hostile_pool()
        assert len(set(pool)) > 500, "Hypothesis should have produced a varied pool"
        start = window_start()
        events = hostile_events(pool, EVENT_COUNT, int(start.timestamp() * 1000))
        config = SimulatorConfig(
            org_id=ORG,
            api_key=API_KEY,
            start=start,
            end=start + timedelta(hours=1),
            events_per_hour=0,
            extra_events=tuple(events),
            stream_requests_per_minute=0,
        )
        del events
        with run_in_thread(config) as sim, SyslogNg(tmp_path, "tcp") as syslog:
            atlassian = atlassian_connection(sim.base_url, ORG, API_KEY, stream_requests_per_minute=0, page_size=1000)
            monkeypatch.setenv(ATLASSIAN_CONN_VAR, atlassian)
            monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(syslog.port))
            summary = AtlassianAuditLogToQRadarOperator(
                task_id="deliver",
                window_start=start.isoformat(),
                window_end=(start + timedelta(hours=1)).isoformat(),
            ).execute({"task_state_store": DictStore()})
            truth = set(sim.ground_truth(start, start + timedelta(hours=1)))
            lines = syslog.wait_for_lines(len(truth), timeout=300, settle=1.0)
        assert len(truth) == EVENT_COUNT
        seen: dict[str, int] = {}
        problems: list[str] = []
        marker = " Atlassian-AuditLogs LEEF:2.0|Atlassian|Organization Audit Log|"
        for line in lines:
            at = line.find(marker)
            if at < 0 or "LEEF:" in line[:at]:
                problems.append(f"syslog header or LEEF start not where expected: {line[:160]!r}")
                continue
            try:
                header, attributes = parse_leef(line[at + len(" Atlassian-AuditLogs ") :])
            except ValueError as err:
                problems.append(f"{err}: {line[:160]!r}")
                continue
            forged = [key for key in attributes if not is_schema_key(key)]
            if forged or header[5] != "x09":
                problems.append(f"forged keys {forged} or delimiter {header[5]!r}")
            event_id = attributes.get("eventId", "")
            seen[event_id] = seen.get(event_id, 0) + 1
        print(
            f"hostile input: {len(pool)} Hypothesis strings ({len(set(pool))} distinct), {len(lines)} frames "
            f"received for {len(truth)} events, {summary['truncated']} truncated to the frame budget"
        )
        assert not problems, f"{len(problems)} bad frames, e.g. {problems[:5]}"
        assert len(lines) == len(truth) == summary["sent"]
        assert set(seen) == truth and max(seen.values()) == 1
