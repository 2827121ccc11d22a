"""The fault matrix as a Markdown table (docs/fault-matrix.md and the pytest summary)."""

from __future__ import annotations

from sandbox.faults.rows import Row
from sandbox.faults.scenarios import SIGKILL_SCENARIO


def _count(value: int | None, after_fix: bool, failed: bool) -> str:
    if value is None:
        return "n/a (not delivered until fixed)" if failed else "n/a"
    return f"{value} after the fix" if after_fix else str(value)


def format_table(rows: list[Row]) -> str:
    """The matrix as a Markdown table (scenario, outcome, missing, duplicates, time)."""
    lines = [
        "| # | scenario | transport | outcome | missing | duplicates (bound) | key bytes | time | bounds met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, row in enumerate(rows, 1):
        outcome = row.outcome
        if row.expected == "failed" and row.message:
            outcome += f": “{_shorten(row.message, 190)}”"
            if row.after_fix:
                outcome += f"; after the fix: {row.after_fix}"
        elif row.outcome.startswith("success after") and row.message:
            outcome += f" (attempt 1: “{_shorten(row.message, 110)}”)"
        elif row.scenario == SIGKILL_SCENARIO and row.message:
            outcome += f" ({row.message})"
        fixed = bool(row.after_fix)
        failed = row.outcome.startswith("failed")
        missing = _count(row.missing, fixed, failed)
        duplicates = _count(row.duplicates, fixed, failed)
        if row.duplicates is not None:
            duplicates += f" (≤ {row.duplicate_bound})"
        verdict = "yes" if row.meets_bounds else "**NO**: " + "; ".join(row.problems)
        if row.known_defect:
            verdict += " (known limitation, see below the table)"
        cells = [
            str(index),
            row.scenario,
            row.transport.upper(),
            outcome,
            missing,
            duplicates,
            str(row.key_bytes),
            f"{row.seconds:.0f} s",
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in [*cells, verdict]) + " |")
    return "\n".join(lines)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
