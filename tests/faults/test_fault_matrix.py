"""The fault matrix: every scenario of sandbox/faults/scenarios.py must meet the delivery bounds.

A row that cannot (a known limitation of the provider) is ``xfail(strict=True)`` with its reason, so the day it
starts meeting the bounds the suite says so.
"""

from __future__ import annotations

import pytest

from sandbox.faults.runner import run_scenario
from sandbox.faults.scenarios import SCENARIOS, Scenario
from sandbox.receivers import require_syslog_ng
from tests.faults.conftest import record_row

pytestmark = pytest.mark.faults


def _params() -> list[object]:
    params = []
    for scenario in SCENARIOS:
        marks = [pytest.mark.xfail(strict=True, reason=scenario.known_defect)] if scenario.known_defect else []
        params.append(pytest.param(scenario, id=scenario.name, marks=marks))
    return params


class TestFaultMatrix:
    @pytest.mark.parametrize("scenario", _params())
    def test_scenario_meets_the_bounds(self, scenario: Scenario, certs, tmp_path):
        require_syslog_ng()
        row = run_scenario(scenario, tmp_path, certs)
        record_row(row)
        assert row.meets_bounds, "; ".join(row.problems)
        assert row.outcome.startswith(scenario.expect), row.outcome

    @pytest.mark.airflow_e2e
    def test_task_process_killed_with_sigkill_is_retried_by_airflow(self, sigkill_run):
        row, artifacts = sigkill_run
        assert row.meets_bounds, f"{'; '.join(row.problems)}; try {artifacts.task_instance.get('try_number')}"
        assert row.attempts >= 2 and row.summary is not None and row.summary["resumed_after"] > 0, row.summary
