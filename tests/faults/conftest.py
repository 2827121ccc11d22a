"""Fixtures of the fault-injection suite, the ``load`` opt-in, and the matrix printed at the end of the run.

The ``load`` tests (a 1M-event window, a 30-day backfill) take long: they are deselected, and reported as
deselected, unless ``RUN_LOAD=1`` is set or ``-m`` names the ``load`` marker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.faults.rows import Row
from sandbox.faults.sigkill import AirflowArtifacts, run_sigkill_scenario
from sandbox.faults.table import format_table
from sandbox.receivers import CertBundle, generate_certs, require_syslog_ng

#: A key nobody would type by accident: the secrets test searches every output for it, in every form (its
#: '+', '/' and '=' make the URL-encoded and base64 forms differ from the raw key).
RECOGNIZABLE_API_KEY = "FAULTS-SECRET+atlassian/api=key-5e8d0c7b"

_ROWS: list[Row] = []


def record_row(row: Row) -> None:
    """Keep a row for the matrix printed at the end of the session."""
    _ROWS.append(row)


def _load_wanted(config: pytest.Config) -> bool:
    return os.environ.get("RUN_LOAD") == "1" or "load" in (config.getoption("markexpr", "") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect ``load`` tests unless asked for (deselected, so they never count as passed)."""
    if _load_wanted(config):
        return
    load = [item for item in items if item.get_closest_marker("load") is not None]
    if load:
        config.hook.pytest_deselected(items=load)
        items[:] = [item for item in items if item.get_closest_marker("load") is None]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Print the fault matrix of this run, and say how to run the load tests if they were left out."""
    if _ROWS:
        terminalreporter.section("fault matrix")
        terminalreporter.write_line(format_table(_ROWS))
    if not _load_wanted(config):
        terminalreporter.write_line("tests/faults: load tests deselected; run them with RUN_LOAD=1 (or -m load)")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    """CA, server, client, expired and wrong-host certificates for the TLS scenarios."""
    return generate_certs(tmp_path_factory.mktemp("fault-certs"))


@pytest.fixture(scope="session")
def sigkill_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Row, AirflowArtifacts]:
    """The SIGKILL scenario on the real scheduler, run once a session (the matrix and the secrets test share it)."""
    require_syslog_ng()
    workdir: Path = tmp_path_factory.mktemp("sigkill")
    row, artifacts = run_sigkill_scenario(workdir, RECOGNIZABLE_API_KEY)
    record_row(row)
    return row, artifacts
