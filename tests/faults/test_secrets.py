"""Secrets never leave: a recognizable API key and TLS client key (with passphrase) through the fault scenarios.

Scanned for every secret: task logs (stdout/stderr and every log record, DEBUG included), XCom (each attempt's
return value), exception texts with their tracebacks and causes, rendered template fields, archive files, the
delivered events, and temporary files left behind; on the real scheduler (the SIGKILL run) the task log files,
the service logs, XCom and the rendered fields of the task instance.
"""

from __future__ import annotations

import gzip
import json
import logging
import tempfile
import traceback
from collections.abc import Iterator

import pytest

from sandbox.faults.environment import Secrets
from sandbox.faults.runner import run_scenario, window_operator, window_start
from sandbox.faults.scenarios import SCENARIOS
from sandbox.receivers import require_syslog_ng
from tests.faults.conftest import RECOGNIZABLE_API_KEY

pytestmark = pytest.mark.faults

#: Scenarios where a secret is most at risk: failures carrying request/TLS details, retries, reconnects.
SECRET_SCENARIOS = (
    "no fault (reference run)",
    "503 outlasting the hook's retries",
    "read timeout (API slower than timeout)",
    "links.next to a foreign host",
    "API key revoked mid-window (401)",
    "receiver restarted mid-window (TLS)",
    "TLS certificate not matching the host",
    "TLS certificate untrusted (other CA)",
    "HTTPS Receiver certificate untrusted",
    "API key with a trailing newline",
    "API answers 302 to another origin",
    "API echoing the key in a 401 body",
    "API echoing the key in 500 bodies x2",
)


def occurrences(needles: dict[str, str], texts: dict[str, str]) -> list[str]:
    """``"<secret> in <where> (N times)"`` for every secret found in any text."""
    found = []
    for where, text in texts.items():
        for name, needle in needles.items():
            count = text.count(needle)
            if count:
                found.append(f"{name} in {where} ({count} times)")
    return found


class _Records(logging.Handler):
    """Every log record of the process, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@pytest.fixture
def all_log_records() -> Iterator[_Records]:
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _exception_text(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


class TestSecretsNeverLeak:
    def test_in_process_scenarios(self, certs, tmp_path, capfd, all_log_records, monkeypatch):
        require_syslog_ng()
        secrets = Secrets.for_certs(certs, api_key=RECOGNIZABLE_API_KEY)
        needles = secrets.needles()
        assert len(needles) >= 3, "the key, the passphrase and at least one line of the client key"
        # PEM text is written to a temporary file while it is loaded: keep those where this test can look.
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
        errors: list[BaseException] = []
        summaries: list[dict] = []
        received: list[str] = []
        archive = tmp_path / "archive"
        by_name = {scenario.name: scenario for scenario in SCENARIOS}
        for index, name in enumerate(SECRET_SCENARIOS):
            row = run_scenario(
                by_name[name],
                tmp_path / f"run-{index}",
                certs,
                secrets,
                errors=errors,
                archive_path=f"file://{archive}",
                summaries=summaries,
                received=received,
            )
            assert row.outcome != "not run", row
        captured = capfd.readouterr()
        rendered = window_operator(window_start(), archive_path="{{ params.archive }}")
        rendered.render_template_fields({"params": {"archive": f"file://{archive}"}, "ds": "2026-01-01"})
        texts = {
            "task stdout": captured.out,
            "task stderr": captured.err,
            "log records": "\n".join(all_log_records.texts),
            "exceptions": "\n".join(_exception_text(error) for error in errors),
            "XCom (return values)": json.dumps(summaries),
            "rendered template fields": json.dumps(
                {field: str(getattr(rendered, field)) for field in rendered.template_fields}
            ),
            "delivered events": "\n".join(received),
        }
        archives = sorted(archive.rglob("*.jsonl.gz"))
        for path in archives:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                texts[f"archive {path.name}"] = handle.read()
        leftovers = [path for path in private_tmp.rglob("*") if path.is_file()]
        for path in leftovers:
            texts[f"temporary file {path.name}"] = path.read_text(errors="replace")
        print(
            f"secrets: scanned {len(texts)} sources, {sum(len(t) for t in texts.values()):,} characters: "
            f"{len(errors)} exceptions, {len(summaries)} XComs, {len(archives)} archives, {len(received)} events, "
            f"{len(all_log_records.texts)} log records, {len(leftovers)} temporary files"
        )
        assert errors and summaries and archives and received, "the scenarios should have produced every kind"
        assert "the API key is wrong, expired or revoked" in texts["exceptions"]
        assert occurrences(needles, texts) == []
        assert [path for path in leftovers if path.suffix == ".pem"] == [], "PEM files must be removed once loaded"

    def test_failed_attempts_leave_no_archive_temp_files(self, certs, tmp_path, monkeypatch):
        require_syslog_ng()
        private_tmp = tmp_path / "tmp"
        private_tmp.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
        by_name = {scenario.name: scenario for scenario in SCENARIOS}
        row = run_scenario(
            by_name["API key revoked mid-window (401)"], tmp_path / "run", certs, archive_path=f"file://{tmp_path}/a"
        )
        assert row.outcome.startswith("failed")
        assert [path.name for path in private_tmp.rglob("*") if path.is_file()] == []

    @pytest.mark.airflow_e2e
    def test_real_scheduler_run(self, sigkill_run):
        _row, artifacts = sigkill_run
        texts = {f"task log {name}": text for name, text in artifacts.task_logs.items()}
        texts.update({f"service log {name}": text for name, text in artifacts.service_logs.items()})
        texts["XCom return_value"] = json.dumps(artifacts.xcom)
        texts["rendered fields"] = json.dumps(artifacts.rendered_fields)
        texts["task instance"] = json.dumps(artifacts.task_instance)
        assert artifacts.task_logs, "the task attempts should have written logs"
        assert artifacts.xcom is not None and artifacts.rendered_fields, "XCom and rendered fields to scan"
        print(
            f"secrets (real scheduler): scanned {len(artifacts.task_logs)} task log files, "
            f"{len(artifacts.service_logs)} service logs, XCom and rendered fields"
        )
        assert occurrences({"api_key": RECOGNIZABLE_API_KEY}, texts) == []
