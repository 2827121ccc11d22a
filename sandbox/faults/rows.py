"""What one scenario produced, counted against the simulator's ground truth and judged against the bounds."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_atlassian_qradar.atlassian_api.guard import SecretScrubber
from airflow_provider_atlassian_qradar.leef import is_schema_key
from sandbox.faults.scenarios import Scenario
from sandbox.leef_parser import parse_leef


@dataclass
class Row:
    """What one scenario produced."""

    scenario: str
    group: str
    transport: str
    expected: str
    outcome: str = "not run"
    attempts: int = 0
    missing: int | None = None
    duplicates: int | None = None
    duplicate_bound: int = 0
    malformed: int = 0
    unknown: int = 0
    forged_keys: int = 0
    #: bytes of the Atlassian API key, in any form, found in the row's errors, tracebacks, XComs, events or logs
    key_bytes: int = 0
    seconds: float = 0.0
    message: str = ""
    after_fix: str = ""
    problems: list[str] = field(default_factory=list)
    known_defect: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def meets_bounds(self) -> bool:
        """Whether every bound of the issue holds for this row."""
        return not self.problems


@dataclass
class Tally:
    """Received lines against the ground truth."""

    counts: Counter[str]
    missing: int
    duplicates: int
    malformed: int
    unknown: int
    forged_keys: int


def tally(lines: list[str], truth: set[str]) -> Tally:
    """Parse every received line (after any syslog header) as one LEEF event and count against ``truth``."""
    counts: Counter[str] = Counter()
    malformed = unknown = forged = 0
    for line in lines:
        start = line.find("LEEF:")
        if start < 0:
            malformed += 1
            continue
        try:
            _header, attributes = parse_leef(line[start:])
        except ValueError:
            malformed += 1  # a split or merged frame does not parse (or repeats keys)
            continue
        forged += sum(1 for key in attributes if not is_schema_key(key))
        event_id = attributes.get("eventId", "")
        if event_id not in truth:
            unknown += 1
            continue
        counts[event_id] += 1
    return Tally(
        counts=counts,
        missing=len(truth - set(counts)),
        duplicates=sum(counts.values()) - len(counts),
        malformed=malformed,
        unknown=unknown,
        forged_keys=forged,
    )


def key_bytes(api_key: str, texts: list[str]) -> int:
    """Bytes of ``api_key`` found in ``texts`` in any form (raw, escaped, URL-encoded, base64)."""
    forms = SecretScrubber(api_key).forms
    return sum(text.count(form) * len(form) for text in texts for form in forms)


def judge(scenario: Scenario, row: Row, got: Tally, truth_size: int) -> None:
    """Add every bound the row misses to ``row.problems`` (the bounds are listed in docs/fault-matrix.md)."""
    problems = row.problems
    if scenario.expect == "success" and not row.outcome.startswith("success"):
        problems.append(f"expected success, got {row.outcome}: {row.message}")
    if scenario.expect == "failed":
        if row.outcome.startswith("success"):
            problems.append("expected a failure that names the cause and the fix, but the task succeeded")
        elif row.attempts != 1:
            problems.append(f"a fault no retry can fix must fail at once, not after {row.attempts} attempts")
        for pattern in scenario.message:
            if not re.search(pattern, row.message):
                problems.append(f"failure message lacks /{pattern}/: {row.message[:300]}")
        if row.after_fix != "success":
            problems.append(f"after the fix the task did not succeed: {row.after_fix}")
    if row.missing is not None and row.missing:
        problems.append(f"{row.missing} of {truth_size} events missing")
    if row.duplicates is not None and row.duplicates > row.duplicate_bound:
        problems.append(f"{row.duplicates} duplicates > bound {row.duplicate_bound}")
    if row.key_bytes:
        problems.append(f"{row.key_bytes} bytes of the API key in errors, XComs or events")
    if got.malformed or got.unknown or got.forged_keys:
        problems.append(
            f"{got.malformed} lines not one LEEF event, {got.unknown} unknown eventIds, {got.forged_keys} forged keys"
        )
