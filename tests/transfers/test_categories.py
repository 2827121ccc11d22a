"""``cat`` is stable: the same action gets the same ``cat`` in every window, as docs/leef-mapping.md documents.

The operator runs in-process against the simulator (whose /event-actions names groups like ``User management``)
and a real syslog-ng; once with /event-actions answering and once with it refused.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, require_syslog_ng

API_KEY = "categories-test-key"
ORG = "org-cat"
HOUR = (datetime.now(timezone.utc) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
MAPPING_DOC = Path(__file__).resolve().parents[2] / "docs" / "leef-mapping.md"


def documented_categories() -> dict[str, str]:
    """action -> cat from the "Built-in categories and severities" table of docs/leef-mapping.md."""
    text = MAPPING_DOC.read_text(encoding="utf-8")
    section = text[text.index("## Built-in categories and severities") :]
    section = section[: section.index("\n## ", 1)]
    categories: dict[str, str] = {}
    for cat, actions in re.findall(r"^\| (\w+) \| (.+) \|$", section, re.MULTILINE):
        for action in re.findall(r"`([a-z0-9_]+)` \d+", actions):
            categories[action] = cat
    return categories


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    require_syslog_ng()
    config = SimulatorConfig(
        org_id=ORG,
        api_key=API_KEY,
        start=HOUR - timedelta(hours=1),
        end=HOUR + timedelta(hours=2),
        events_per_hour=600,
        seed=11,
        stream_requests_per_minute=0,
    )
    with run_in_thread(config) as sim, SyslogNg(tmp_path, "tcp") as receiver:
        monkeypatch.setenv(
            ATLASSIAN_CONN_VAR, atlassian_connection(sim.base_url, ORG, API_KEY, stream_requests_per_minute=0)
        )
        monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(receiver.port))
        yield sim, receiver


def deliver(start: datetime) -> None:
    AtlassianAuditLogToQRadarOperator(
        task_id="deliver", window_start=start.isoformat(), window_end=(start + timedelta(hours=1)).isoformat()
    ).execute({})


def test_cat_is_the_documented_category_whether_or_not_event_actions_answers(pipeline):
    sim, receiver = pipeline
    deliver(HOUR)  # /event-actions answers
    first = receiver.wait_for_lines(len(sim.ground_truth(HOUR, HOUR + timedelta(hours=1))))
    sim.faults.update(forbidden=1)  # the next request, /event-actions, gets a 403; the stream still works
    deliver(HOUR + timedelta(hours=1))
    total = len(first) + len(sim.ground_truth(HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)))
    lines = receiver.wait_for_lines(total)
    documented = documented_categories()
    assert len(documented) > 50
    seen: dict[str, set[str]] = {}
    group_names: dict[int, set[str]] = {0: set(), 1: set()}
    for number, line in enumerate(lines):
        header, attributes = parse_leef(line[line.index("LEEF:") :])
        action = attributes.get("actionRaw", header[4])
        seen.setdefault(action, set()).add(attributes["cat"])
        window = 0 if number < len(first) else 1
        if "actionGroup" in attributes:
            group_names[window].add(attributes["actionGroup"])
        assert attributes["cat"] == documented.get(action, "Other"), (action, attributes["cat"])
    assert all(len(cats) == 1 for cats in seen.values()), seen
    assert "User management" in group_names[0]  # the organization's display names arrived ...
    assert group_names[1] == set()  # ... and without /event-actions they are simply absent, cat unchanged
