"""The README's "Which hour a run delivers" table, checked against Airflow's own timetable and backfill code.

Every example row is recomputed from the shipped DAG (``build_audit_dag``, serialized as the scheduler sees it):
scheduled runs by ``next_dagrun_info``, manual triggers and ``airflow dags test`` by
``infer_manual_data_interval`` (what the trigger API and ``dags test`` call), backfills by
``airflow.models.backfill._get_info_list`` (what ``POST /api/v2/backfills`` and the UI dialog call). The browser
test (tests/browser) also backfills through the real dialog and checks the hours that arrive.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pendulum
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
START = pendulum.datetime(2026, 11, 1, tz="UTC")


def table_rows() -> dict[str, tuple[str, str]]:
    """First column -> (example, delivers) of the hours table (the rows after its marker comment)."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("<!-- hours-table") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[3:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = (cells[1], cells[2])
    return rows


def times(text: str) -> list[str]:
    """Every ``YYYY-MM-DD HH:MM`` or bare ``HH:MM`` in a cell, in order."""
    return re.findall(r"(?:\d{4}-\d\d-\d\d )?\d\d:\d\d", text)


def parse(moment: str, day: str = "2026-12-02") -> datetime:
    if " " not in moment:
        moment = f"{day} {moment}"
    return pendulum.instance(datetime.strptime(moment, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc))


def delivered(cell: str, day: str) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a row states (the first two times of its "delivers" cell)."""
    start, end = times(cell)[:2]
    return parse(start, day), parse(end, day)


@pytest.fixture(scope="module")
def serialized_dag():
    from airflow.serialization.serialized_objects import DagSerialization

    from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

    dag = build_audit_dag("atlassian_audit_to_qradar", start_date=START, schedule_timezone="UTC")
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def test_the_table_has_every_way_a_run_starts():
    assert list(table_rows()) == [
        "scheduled (hourly)",
        "Trigger, logical date L",
        "`airflow dags test <DAG> <date>`",
        'Trigger → Backfill, From F To T ("To" is inclusive)',
        "Trigger → Backfill with the dialog's default times",
    ]


def test_scheduled(serialized_dag):
    from airflow.timetables.base import DataInterval, TimeRestriction

    example, delivers = table_rows()["scheduled (hourly)"]
    logical, started = (parse(t) for t in times(example))
    previous = DataInterval(logical - timedelta(hours=1), logical)
    info = serialized_dag.timetable.next_dagrun_info(
        last_automated_data_interval=previous, restriction=TimeRestriction(START, None, catchup=True)
    )
    assert (info.logical_date, info.run_after) == (logical, started)
    assert (info.data_interval.start, info.data_interval.end) == delivered(delivers, "2026-12-02")


@pytest.mark.parametrize("row", ["Trigger, logical date L", "`airflow dags test <DAG> <date>`"])
def test_manual_trigger_and_dags_test(serialized_dag, row):
    example, delivers = table_rows()[row]
    (moment,) = times(example)
    interval = serialized_dag.timetable.infer_manual_data_interval(run_after=parse(moment))
    assert (interval.start, interval.end) == delivered(delivers, moment[:10])


@pytest.mark.parametrize(
    "row", ['Trigger → Backfill, From F To T ("To" is inclusive)', "Trigger → Backfill with the dialog's default times"]
)
def test_backfill(serialized_dag, row):
    from airflow.models.backfill import _get_info_list

    example, delivers = table_rows()[row]
    first, last = (parse(t) for t in times(example))
    infos = _get_info_list(from_date=first, to_date=last, reverse=False, dag=serialized_dag)
    intervals = [(info.data_interval.start, info.data_interval.end) for info in infos]
    assert all(end - start == timedelta(hours=1) for start, end in intervals)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(intervals))  # no gap, no overlap
    start, end = delivered(delivers, first.strftime("%Y-%m-%d"))
    assert (intervals[0][0], intervals[-1][1]) == (start, end)
    if "From 2026-12-01 20:00" in example:
        assert len(intervals) == 3  # one run per hour, "To" included
