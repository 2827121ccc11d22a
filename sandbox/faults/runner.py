"""Play an in-process scenario: the operator over one real hourly window, retried the way Airflow retries a task."""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

from airflow_provider_atlassian_qradar.hooks.qradar import QRadarHook
from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR
from sandbox.faults.environment import EVENTS_PER_HOUR, MAX_ATTEMPTS, ORG, Env, Receiver, Secrets
from sandbox.faults.hostile_servers import HostileApi
from sandbox.faults.rows import Row, judge, key_bytes, tally
from sandbox.faults.scenarios import SCENARIOS, Scenario
from sandbox.receivers import CertBundle
from sandbox.state_store import DictStore


def window_start() -> datetime:
    """The hour every scenario delivers: yesterday, so it is settled and inside retention."""
    return (datetime.now(timezone.utc) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


@contextlib.contextmanager
def _saved_environ(*names: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _after_page(page: int, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, right after the ``page``-th ``send`` of any QRadar sender in this process returns."""
    original = QRadarHook.get_sender
    state = {"pages": 0, "fired": False}

    class SenderSpy:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def __enter__(self) -> SenderSpy:
            self.inner.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self.inner.__exit__(*exc)

        def send(self, records: Any) -> int:
            count = int(self.inner.send(records))
            state["pages"] += 1
            if state["pages"] == page and not state["fired"]:
                state["fired"] = True
                action()
            return count

    def get_sender(hook: QRadarHook) -> Any:
        return SenderSpy(original(hook))

    with mock.patch.object(QRadarHook, "get_sender", get_sender):
        yield


def window_operator(start: datetime, **kwargs: Any) -> AtlassianAuditLogToQRadarOperator:
    return AtlassianAuditLogToQRadarOperator(
        task_id="deliver",
        window_start=start.isoformat(),
        window_end=(start + timedelta(hours=1)).isoformat(),
        **kwargs,
    )


def run_attempts(
    operator_factory: Callable[[], AtlassianAuditLogToQRadarOperator],
    store: DictStore,
    *,
    max_attempts: int,
    between_attempts: Callable[[], None] | None = None,
    errors: list[BaseException] | None = None,
) -> tuple[dict[str, Any] | None, int, BaseException | None]:
    """Emulate Airflow's retries: ``execute`` again with the same task state store after each failure.

    Stops at once on ``AirflowFailException`` (Airflow does not retry it). Returns (summary or None, attempts,
    the last error).
    """
    from airflow.sdk.exceptions import AirflowFailException

    last: BaseException | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            return operator_factory().execute({"task_state_store": store}), attempt, None
        except Exception as err:  # the task failed: Airflow records it and retries
            last = err
            if errors is not None:
                errors.append(err)
            if isinstance(err, AirflowFailException) or attempt == max_attempts:
                return None, attempt, err
            if between_attempts is not None:
                between_attempts()
    return None, max_attempts, last


def run_scenario(
    scenario: Scenario,
    workdir: Path,
    certs: CertBundle,
    secrets: Secrets | None = None,
    *,
    errors: list[BaseException] | None = None,
    archive_path: str | None = None,
    summaries: list[dict[str, Any]] | None = None,
    received: list[str] | None = None,
) -> Row:
    """Play one scenario end to end and return its row.

    :param errors: every exception a task attempt raised is appended here (the secrets test scans them).
    :param archive_path: pass the operator an archive path (the secrets test scans the archive files).
    :param summaries: every successful attempt's return value (its XCom) is appended here.
    :param received: every line the receiver got is appended here.
    """
    secrets = secrets or Secrets.for_certs(certs)
    workdir.mkdir(parents=True, exist_ok=True)
    start = window_start()
    row = Row(scenario.name, scenario.group, scenario.transport, scenario.expect, known_defect=scenario.known_defect)
    row.duplicate_bound = scenario.duplicate_bound
    config = SimulatorConfig(
        org_id=ORG,
        api_key=secrets.api_key,
        start=start - timedelta(minutes=30),
        end=start + timedelta(minutes=90),
        events_per_hour=EVENTS_PER_HOUR,
        seed=11,
        hostile_ratio=0.02,
        stream_requests_per_minute=0,
        events_requests_per_minute=0,
    )
    receiver = Receiver(scenario.transport, workdir, certs, scenario.server_cert)
    receiver.http_responses = list(scenario.http_responses)
    receiver.max_body_bytes = scenario.max_body_bytes
    receiver.stalls = scenario.stalling_receiver
    store = DictStore()
    operator_kwargs: dict[str, Any] = {"archive_path": archive_path} if archive_path else {}
    row_errors: list[BaseException] = []
    row_summaries: list[dict[str, Any]] = []

    def operator() -> AtlassianAuditLogToQRadarOperator:
        return window_operator(start, **operator_kwargs)

    def record(summary: dict[str, Any] | None) -> None:
        if summary is not None:
            row_summaries.append(summary)
            if summaries is not None:
                summaries.append(summary)

    with (
        _saved_environ(ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR),
        run_in_thread(config) as sim,
    ):
        env = Env(sim, receiver, secrets, certs, dict(scenario.atlassian_extra), dict(scenario.qradar_extra))
        env.atlassian_fields.update(scenario.atlassian_fields)
        if scenario.front is not None:
            env.front = HostileApi(scenario.front(), upstream=sim.base_url).__enter__()
        if not scenario.trusted_ca:
            env.qradar_extra["ca_cert"] = str(certs.other_ca_cert)
        try:
            receiver.start()
            env.publish_connections()
            sim.faults.update(**scenario.faults)
            if scenario.before_first is not None:
                scenario.before_first(env)
            truth = set(sim.ground_truth(start, start + timedelta(hours=1)))
            mid = scenario.mid_window
            patch = _after_page(scenario.after_page, lambda: mid(env)) if mid is not None else contextlib.nullcontext()
            between = scenario.between_attempts
            started = time.monotonic()
            with patch:
                summary, row.attempts, error = run_attempts(
                    operator,
                    store,
                    max_attempts=MAX_ATTEMPTS,
                    between_attempts=(lambda: between(env)) if between is not None else None,
                    errors=row_errors,
                )
            record(summary)
            row.summary = summary
            if error is not None:
                row.message = _one_line(error)
            if summary is not None:
                row.outcome = "success" if row.attempts == 1 else f"success after {row.attempts} attempts"
            else:
                row.outcome = f"failed after {row.attempts} attempts"
            for timer in env.timers:
                timer.join(60)
            if summary is None and scenario.fix is not None:
                sim.faults.clear()
                scenario.fix(env)
                fixed_summary, _attempts, fixed_error = run_attempts(operator, store, max_attempts=1, errors=row_errors)
                record(fixed_summary)
                row.after_fix = "success" if fixed_summary is not None else f"still failing: {_one_line(fixed_error)}"
            row.seconds = time.monotonic() - started
            delivered = summary is not None or row.after_fix == "success"
            lines = receiver.leef_lines(len(truth) if delivered else 0, timeout=60 if delivered else 2)
            if received is not None:
                received.extend(lines)
            got = tally(lines, truth)
        finally:
            for timer in env.timers:
                timer.cancel()
            receiver.close()
            if env.front is not None:
                env.front.__exit__(None, None, None)
            if errors is not None:
                errors.extend(row_errors)
    texts = [json.dumps(row_summaries), *lines]
    for failure in row_errors:
        texts += [str(failure), repr(failure), *traceback.format_exception(failure)]
    row.key_bytes = key_bytes(secrets.api_key, texts)
    row.malformed, row.unknown, row.forged_keys = got.malformed, got.unknown, got.forged_keys
    if summary is not None or row.after_fix == "success":
        row.missing, row.duplicates = got.missing, got.duplicates
    judge(scenario, row, got, len(truth))
    return row


def _one_line(error: BaseException | None) -> str:
    return " ".join(str(error).split()) if error is not None else ""


def run_matrix(
    workdir: Path, certs: CertBundle, names: list[str] | None = None, progress: Callable[[Row], None] | None = None
) -> list[Row]:
    """Run the in-process scenarios (all, or those named) one after the other."""
    rows = []
    for index, scenario in enumerate(SCENARIOS):
        if names is not None and scenario.name not in names:
            continue
        row = run_scenario(scenario, workdir / f"scenario-{index:02d}", certs)
        rows.append(row)
        if progress is not None:
            progress(row)
    return rows
