"""Build the hourly audit-log DAG, one per Atlassian organization, from a few settings.

Settings not passed as arguments come from environment variables, so a deployment changes them without editing
code: ``ATLASSIAN_QRADAR_START_DATE`` (ISO date or date-time, UTC if no zone; default 2026-11-01),
``ATLASSIAN_QRADAR_TIMEZONE`` (IANA zone of the hourly schedule and of rendered times; default UTC),
``ATLASSIAN_QRADAR_SETTLE_MINUTES`` (wait after each window for late events; default 15),
``ATLASSIAN_QRADAR_QUERY`` (optional free-text filter, passed as it is: never rendered as a Jinja template;
default none: the whole audit log), ``ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES`` (the longest one window's task
may take, settle wait included; default 120), ``ATLASSIAN_QRADAR_RECONCILE_AFTER_MINUTES`` (when each window is
read a second time for late events; default 1440, i.e. 24 h; 0 turns the second read off),
``ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES`` (the silent-source alarm: no event delivered for this much window time
logs a warning and sends a metric; default 1440; 0 turns it off), ``ATLASSIAN_QRADAR_FAIL_WHEN_SILENT`` (``true``
also fails the task when the alarm trips, so Airflow's alerting fires; default ``false``). A value that cannot
be used stops the DAG file from loading with an error naming the variable and the expected form.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

try:
    from airflow.sdk import literal
except ImportError:  # Airflow 3.1 keeps it in the definitions package only
    from airflow.sdk.definitions.template import literal  # type: ignore[no-redef,unused-ignore]

try:
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.sdk.definitions.timetables.interval import DeltaDataIntervalTimetable
except ImportError:  # Airflow 3.1 keeps them in core only
    from airflow.timetables.interval import (  # type: ignore[assignment]
        CronDataIntervalTimetable,
        DeltaDataIntervalTimetable,
    )

from airflow_provider_atlassian_qradar.atlassian_api import DEFAULT_REQUESTS_PER_MINUTE, EVENTS, STREAM
from airflow_provider_atlassian_qradar.atlassian_api.filters import FilterArguments
from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator

DEFAULT_START_DATE = "2026-11-01T00:00:00+00:00"
DEFAULT_MAX_ACTIVE_RUNS = 16
#: Tasks of one organization that may read the API at once, across every run of the DAG (and, with a pool, across
#: DAGs); each paces at 1/DEFAULT_API_SLOTS of the budget. Ten hide Airflow's per-task overhead behind the pacing
#: interval (bench measure 7) and divide 50/min evenly; see docs/deployment.md for sizing.
DEFAULT_API_SLOTS = 10
#: The longest one window's task may take (settle wait, delivery, reconciliation). A window that needs more (a
#: huge backlog hour) times out, and the retry resumes from its checkpoint, so progress is never lost.
DEFAULT_EXECUTION_TIMEOUT: timedelta = timedelta(hours=2)


class DagSettingsError(ValueError):
    """An ``ATLASSIAN_QRADAR_*`` environment variable has a value that cannot be used; the message names it."""


DOC_MD = """
### Atlassian organization audit log → IBM QRadar

Every hour, the task `deliver_audit_events` reads the audit events of the hour that just ended (the run's data
interval, `[data_interval_start, data_interval_end)`) from the Atlassian Organizations API and sends each one to
QRadar once, as a LEEF 2.0 line, over the transport of the `{qradar_conn_id}` connection. It waits
{settle_minutes} minutes after the hour before reading, because Atlassian can take minutes to expose an event.

* **Connections**: `{atlassian_conn_id}` (type *Atlassian Organization Admin API*: Organization ID + API key) and
  `{qradar_conn_id}` (type *IBM QRadar*: host, port, protocol, log source identifier).
* **History**: catchup is on, so unpausing loads every hour since the start date ({start_date}). To (re)load
  any range later, use **Trigger → Backfill** in this DAG's page (or `airflow backfill create`): pick the
  dates, and "All Runs" to re-deliver hours that already succeeded. Hours older than Atlassian's 180-day
  retention succeed without sending anything.
* **Late events**: each run also reads once more the hour that ended {reconcile_hours} h earlier and sends the
  events that became visible in the API after that hour was first read (the XCom summary's `reconcile` part).
* **Retries** resume after the last delivered page (Airflow 3.3+), so QRadar gets at most one page twice.
* **Time bound**: one window's task may take at most {execution_timeout} (settle wait included); then it fails
  and its retry resumes from the checkpoint. Change it with `ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES`.
* **Concurrency**: at most {api_slots} windows read the API at once — across scheduled runs, catchup and any
  number of backfills of this DAG ({pool_text}) — and each paces at 1/{api_slots} of the organization's request
  budget, so together they stay inside Atlassian's rate limits. Up to {max_active_runs} runs are active; the rest
  of them wait for a slot.
"""


def _exponential_backoff() -> bool | float:
    """Return the ``retry_exponential_backoff`` value that doubles the delay on this Airflow.

    Airflow 3.2+ takes a multiplier (``True`` would mean 1, no growth); 3.1 takes a flag and refuses a float.
    """
    try:
        from airflow.sdk.bases.operator import BASEOPERATOR_ARGS_EXPECTED_TYPES
    except ImportError:  # pragma: no cover - a future SDK without the table
        return 2.0
    expected = BASEOPERATOR_ARGS_EXPECTED_TYPES.get("retry_exponential_backoff", float)
    accepted = expected if isinstance(expected, tuple) else (expected,)
    return 2.0 if float in accepted else True


def _env(name: str, default: str) -> str:
    """Read a setting; an empty value (as compose files often pass) means unset."""
    return os.environ.get(name, "").strip() or default


def _env_start_date() -> datetime:
    raw = _env("ATLASSIAN_QRADAR_START_DATE", DEFAULT_START_DATE)
    expected = "an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T00:00:00+00:00 (UTC if no zone)"
    try:
        parsed = pendulum.parse(raw, tz="UTC")
    except (ValueError, TypeError):
        raise DagSettingsError(f"ATLASSIAN_QRADAR_START_DATE={raw[:60]!r} is not {expected}") from None
    if not isinstance(parsed, datetime):
        raise DagSettingsError(f"ATLASSIAN_QRADAR_START_DATE={raw[:60]!r} is a duration or time, not {expected}")
    return parsed


def _env_minutes(name: str, default: float, *, minimum: float) -> timedelta:
    raw = _env(name, str(default))
    try:
        minutes = float(raw)
    except ValueError:
        minutes = float("nan")
    if not math.isfinite(minutes) or minutes < minimum:
        raise DagSettingsError(f"{name}={raw[:60]!r} is not a number of minutes >= {minimum:g} (e.g. {default:g})")
    return timedelta(minutes=minutes)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false")
    if raw.lower() in ("true", "1", "yes", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "off"):
        return False
    raise DagSettingsError(f"{name}={raw[:60]!r} is not a boolean: use true or false")


def _env_timezone() -> str:
    raw = _env("ATLASSIAN_QRADAR_TIMEZONE", "UTC")
    try:
        pendulum.timezone(raw)
    except Exception:  # pendulum raises InvalidTimezone or ZoneInfoNotFoundError, depending on the version
        raise DagSettingsError(
            f"ATLASSIAN_QRADAR_TIMEZONE={raw[:60]!r} is not an IANA time zone name (e.g. UTC or Europe/Berlin)"
        ) from None
    return raw


def api_share(budget: Mapping[str, float] | None = None, slots: int = DEFAULT_API_SLOTS) -> dict[str, float]:
    """Each task's share of an organization's request budget per path, when ``slots`` tasks read it at once.

    For your own DAGs: give every task that reads the same organization the same pool of ``slots`` slots and
    ``requests_per_minute=api_share(slots=slots)``.

    :param budget: requests per minute per path (default: Atlassian's 50 for the stream, 10 for ``/events``).
    :param slots: tasks reading the organization at once (the pool's slots).
    """
    total = dict(DEFAULT_REQUESTS_PER_MINUTE)
    total.update(budget or {})
    return {path: rpm / slots for path, rpm in total.items()}


_FILTER_NAMES = tuple(FilterArguments.__annotations__)


def _check_slots_fit_the_budget(slots: int, budget: Mapping[str, float], *, filtered: bool) -> None:
    """Refuse more slots than the path's requests a minute: a share under one a minute cannot keep a 60 s span
    of all slots together inside the limit (each slot may put its one request in the same minute)."""
    path = EVENTS if filtered else STREAM
    limit = {**DEFAULT_REQUESTS_PER_MINUTE, **budget}[path]
    if limit > 0 and slots > limit:
        reason = " (a filter is set, so windows are read from /events)" if filtered else ""
        raise DagSettingsError(
            f"api_slots={slots} is more than the {limit:g} requests a minute allowed on /{path}{reason}: each slot "
            f"needs at least one a minute; use api_slots <= {math.floor(limit)}"
        )


def build_audit_dag(
    dag_id: str = "atlassian_audit_to_qradar",
    *,
    atlassian_conn_id: str = "atlassian_admin_default",
    qradar_conn_id: str = "qradar_default",
    start_date: datetime | None = None,
    schedule_timezone: str | None = None,
    settle: timedelta | None = None,
    max_active_runs: int | None = None,
    api_slots: int = DEFAULT_API_SLOTS,
    api_pool: str | None = None,
    catchup: bool = True,
    retries: int = 6,
    requests_per_minute: Mapping[str, float] | None = None,
    tags: list[str] | None = None,
    operator_kwargs: Mapping[str, Any] | None = None,
    execution_timeout: timedelta | None = None,
    reconcile_after: timedelta | None = None,
    window: timedelta = timedelta(hours=1),
    silence_after: timedelta | None = None,
    fail_when_silent: bool | None = None,
) -> DAG:
    """Return the hourly DAG that delivers one organization's audit log to QRadar.

    :param dag_id: the DAG id; use one per organization.
    :param atlassian_conn_id: connection of type ``atlassian_admin``.
    :param qradar_conn_id: connection of type ``qradar``.
    :param start_date: first window start; default ``ATLASSIAN_QRADAR_START_DATE`` or 2026-11-01 UTC.
    :param schedule_timezone: IANA zone of the hourly schedule; default ``ATLASSIAN_QRADAR_TIMEZONE`` or UTC.
    :param settle: wait after each window end; default ``ATLASSIAN_QRADAR_SETTLE_MINUTES`` or 15 minutes.
    :param max_active_runs: runs active at once (their tasks wait for an API slot); default 16 or twice ``api_slots``
        if that is more, so a run is ready whenever a slot frees.
    :param api_slots: tasks that read the API at once across all runs of this DAG (``max_active_tis_per_dag``);
        each paces at ``budget / api_slots``.
    :param api_pool: an Airflow pool the task runs in, to share one organization's budget with other DAGs (and
        your own tasks using the operator); it must have ``api_slots`` slots. Default
        ``ATLASSIAN_QRADAR_API_POOL`` or none. A pool that does not exist shows as a DAG warning in the UI
        ("references non-existent pools") and no task of the DAG starts until it is created.
    :param catchup: create runs for every past hour since ``start_date`` (default True).
    :param retries: task retries, with exponential backoff from 1 to 30 minutes.
    :param requests_per_minute: the organization's API budget per path (default 50 stream / 10 events).
    :param tags: DAG tags.
    :param operator_kwargs: extra arguments for :class:`AtlassianAuditLogToQRadarOperator` (filters, archive_path,
        log_source_identifier, max_frame_bytes, ...).
    :param reconcile_after: each run also re-reads the window that ended this long before its own and sends the
        events that appeared since (late events); default ``ATLASSIAN_QRADAR_RECONCILE_AFTER_MINUTES`` or 24 h;
        ``timedelta(0)`` turns it off.
    :param silence_after: the silent-source alarm's span: no event delivered for this much window time logs a
        warning naming what to check and sends the ``silent_source`` metric; default
        ``ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES`` or 24 h; ``timedelta(0)`` turns it off.
    :param fail_when_silent: also fail the task when the alarm trips (Airflow's email/callbacks then fire);
        default ``ATLASSIAN_QRADAR_FAIL_WHEN_SILENT`` or False.
    :param window: the length of each run's window. The default, one hour, is aligned to the hour in
        ``schedule_timezone``; any other length is counted from ``start_date`` (tests use seconds).
    :param execution_timeout: the longest one window's task may take, settle wait included; default
        ``ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES`` or 2 hours. It bounds a window whose endpoints hang; the
        task retry resumes from the checkpoint.
    :raises DagSettingsError: an ``ATLASSIAN_QRADAR_*`` variable that cannot be used, named in the message.
    """
    timezone_name = schedule_timezone or _env_timezone()
    settle_window = settle if settle is not None else _env_minutes("ATLASSIAN_QRADAR_SETTLE_MINUTES", 15, minimum=0)
    task_timeout = (
        execution_timeout
        if execution_timeout is not None
        else _env_minutes(
            "ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES", DEFAULT_EXECUTION_TIMEOUT.total_seconds() / 60, minimum=1
        )
    )
    first_window = start_date or _env_start_date()
    second_read = (
        reconcile_after
        if reconcile_after is not None
        else _env_minutes("ATLASSIAN_QRADAR_RECONCILE_AFTER_MINUTES", 1440, minimum=0)
    )
    budget = dict(requests_per_minute or {})
    if api_slots < 1:
        raise DagSettingsError(f"api_slots={api_slots} must be at least 1")
    share = api_share(budget, api_slots)
    active_runs = max_active_runs if max_active_runs is not None else max(DEFAULT_MAX_ACTIVE_RUNS, 2 * api_slots)
    pool = api_pool or _env("ATLASSIAN_QRADAR_API_POOL", "") or None
    alarm_span = (
        silence_after
        if silence_after is not None
        else _env_minutes("ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES", 1440, minimum=0)
    )
    fail_silent = (
        fail_when_silent if fail_when_silent is not None else _env_bool("ATLASSIAN_QRADAR_FAIL_WHEN_SILENT", False)
    )
    task_kwargs: dict[str, Any] = {
        "time_zone": timezone_name,
        "reconcile_after": second_read or None,
        "silence_after": alarm_span or None,
        "fail_when_silent": fail_silent,
    }
    if _env("ATLASSIAN_QRADAR_QUERY", ""):
        # A value from the environment is data, not a template: literal() makes Jinja pass it through untouched
        # ("{{ conn.x.password }}" must not expand, "tag {{" must not fail the task).
        task_kwargs["query"] = literal(_env("ATLASSIAN_QRADAR_QUERY", ""))
    task_kwargs.update(operator_kwargs or {})
    _check_slots_fit_the_budget(api_slots, budget, filtered=any(task_kwargs.get(name) for name in _FILTER_NAMES))
    doc = DOC_MD.format(
        atlassian_conn_id=atlassian_conn_id,
        qradar_conn_id=qradar_conn_id,
        settle_minutes=round(settle_window.total_seconds() / 60),
        start_date=first_window.isoformat(),
        max_active_runs=active_runs,
        api_slots=api_slots,
        pool_text=f"and other DAGs in pool `{pool}`" if pool else "one DAG; a pool shares it with other DAGs",
        execution_timeout=task_timeout,
        reconcile_hours=round(second_read.total_seconds() / 3600, 1),
    )
    if second_read <= timedelta(0):
        doc = doc.replace("* **Late events**", "* **Late events** (turned off here)")
    hourly = window == timedelta(hours=1)
    with DAG(
        dag_id=dag_id,
        schedule=(
            CronDataIntervalTimetable("0 * * * *", timezone=timezone_name)
            if hourly
            else DeltaDataIntervalTimetable(window)
        ),
        start_date=first_window,
        catchup=catchup,
        max_active_runs=active_runs,
        max_active_tasks=active_runs,
        doc_md=doc,
        tags=tags or ["atlassian", "qradar", "audit-log", "siem"],
        default_args={
            "retries": retries,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": _exponential_backoff(),
            "max_retry_delay": timedelta(minutes=30),
        },
    ) as dag:
        AtlassianAuditLogToQRadarOperator(
            task_id="deliver_audit_events",
            atlassian_conn_id=atlassian_conn_id,
            qradar_conn_id=qradar_conn_id,
            settle=settle_window,
            requests_per_minute=share,
            execution_timeout=task_timeout,
            max_active_tis_per_dag=api_slots,
            pool=pool,
            **task_kwargs,
        )
    return dag
