"""Operator that streams one window of the Atlassian organization audit log to IBM QRadar as LEEF 2.0.

Data flow per page: Atlassian API -> LEEF encoder -> QRadar transport -> receipt -> checkpoint. Memory stays flat
whatever the window size; a retry resumes after the last checkpoint, so at most one page is delivered twice.
The operator decides when and what; the page loop, checkpoint, archive, lock and stores live beside it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import psutil
from airflow.sdk import BaseOperator

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.connection_fields import ConnectionConfigError
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianAuditLogHook
from airflow_provider_atlassian_qradar.hooks.qradar import QRadarDeliveryError, QRadarHook
from airflow_provider_atlassian_qradar.leef import LeefOptions
from airflow_provider_atlassian_qradar.reconcile import DEFAULT_VISIBILITY_GAP
from airflow_provider_atlassian_qradar.silence import DEFAULT_SILENCE_AFTER, Verdict
from airflow_provider_atlassian_qradar.transfers.archive import WindowArchive, discarding
from airflow_provider_atlassian_qradar.transfers.assets import audit_log_asset
from airflow_provider_atlassian_qradar.transfers.checkpoint import TaskCheckpoint
from airflow_provider_atlassian_qradar.transfers.delivery import FirstRead, NewestProcessed, send_batches
from airflow_provider_atlassian_qradar.transfers.failures import AirflowFailException, is_permanent
from airflow_provider_atlassian_qradar.transfers.reconcile_store import ReconcileStore
from airflow_provider_atlassian_qradar.transfers.second_read import remember_first_read, second_read
from airflow_provider_atlassian_qradar.transfers.silence_alarm import judge_silence, silence_message
from airflow_provider_atlassian_qradar.transfers.summary import (
    emit_window_metrics,
    first_read_summary,
    iso_ms,
    record_asset_event,
    window_summary,
)
from airflow_provider_atlassian_qradar.transfers.window_bounds import checked_window
from airflow_provider_atlassian_qradar.transfers.window_lock import window_lock
from airflow_provider_atlassian_qradar.windows import RETENTION, Window

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_SETTLE = timedelta(minutes=15)
DEFAULT_MAX_WINDOW = timedelta(days=1)
DEFAULT_RECONCILE_AFTER = timedelta(hours=24)


class AtlassianAuditLogToQRadarOperator(BaseOperator):
    """Deliver every Atlassian audit event of ``[window_start, window_end)`` to QRadar once.

    Waits (deferred) until ``window_end + settle``, then streams page by page and checkpoints past each page QRadar
    confirmed (Airflow 3.3+), so a retry resumes there; see docs/delivery.md.

    :param window_start: inclusive window start (templated), default ``{{ data_interval_start }}``; an ISO 8601
        string without an offset is taken as UTC.
    :param window_end: exclusive window end (templated), default ``{{ data_interval_end }}``.
    :param atlassian_conn_id: connection of type ``atlassian_admin``.
    :param qradar_conn_id: connection of type ``qradar``.
    :param query: free-text filter ``q`` (templated); any filter switches to the slower ``/events`` endpoint.
    :param action: action id filter (templated).
    :param actor: actor id filter(s) (templated).
    :param ip: IP filter(s) (templated).
    :param product: product filter(s) (templated).
    :param log_source_identifier: overrides the QRadar connection's identifier (templated).
    :param time_zone: IANA zone for syslog header times and ISO time keys; overrides the connection.
    :param max_frame_bytes: overrides the QRadar connection's frame budget.
    :param severity_overrides: ``{action id: LEEF sev 1..10}`` replacing the built-in defaults.
    :param archive_path: optional URI or ``ObjectStoragePath`` (templated): the window's raw events are written
        there as gzipped JSON Lines, ``<archive_path>/<conn id>/<window label>.jsonl.gz``, overwritten on rerun.
    :param settle: how long after ``window_end`` to wait before reading, for late events (default 15 min).
    :param max_window: the longest window accepted (default 1 day).
    :param page_size: events per API request; overrides the connection.
    :param requests_per_minute: this task's share of the API rate limit per path, e.g. ``{"events-stream": 25}``.
    :param deferrable: wait for the settle time in the triggerer (default) instead of sleeping in the worker.
    :param reconcile_after: the task also reads once more the window that ended this long before (rounded up to
        whole windows; default 24 h) and sends its late events. ``None``/``timedelta(0)``: off. Needs Airflow 3.3+.
    :param visibility_gap: how long before a first read an event may have been processed and still not have been
        visible to it (default 5 min); the second read re-checks events processed after ``first read - gap``.
    :param silence_after: the silent-source alarm's span of window time without a delivery (rounded up to whole
        windows; default 24 h; see :mod:`~airflow_provider_atlassian_qradar.silence` and docs/operations.md).
        ``None``/``timedelta(0)``: off. Needs Airflow 3.3+.
    :param fail_when_silent: also fail the task (after delivering its window) when the alarm trips, so Airflow's
        own alerting (email, callbacks) fires; default False.
    """

    template_fields: Sequence[str] = (
        "window_start",
        "window_end",
        "query",
        "action",
        "actor",
        "ip",
        "product",
        "log_source_identifier",
        "archive_path",
    )
    ui_color = "#0052cc"

    def __init__(
        self,
        *,
        window_start: str | datetime = "{{ data_interval_start }}",
        window_end: str | datetime = "{{ data_interval_end }}",
        atlassian_conn_id: str = AtlassianAuditLogHook.default_conn_name,
        qradar_conn_id: str = QRadarHook.default_conn_name,
        query: str | None = None,
        action: str | None = None,
        actor: str | Sequence[str] | None = None,
        ip: str | Sequence[str] | None = None,
        product: str | Sequence[str] | None = None,
        log_source_identifier: str | None = None,
        time_zone: str | None = None,
        max_frame_bytes: int | None = None,
        severity_overrides: dict[str, int] | None = None,
        archive_path: Any = None,
        settle: timedelta = DEFAULT_SETTLE,
        max_window: timedelta = DEFAULT_MAX_WINDOW,
        page_size: int | None = None,
        requests_per_minute: dict[str, float] | None = None,
        deferrable: bool = True,
        reconcile_after: timedelta | None = DEFAULT_RECONCILE_AFTER,
        visibility_gap: timedelta = DEFAULT_VISIBILITY_GAP,
        silence_after: timedelta | None = DEFAULT_SILENCE_AFTER,
        fail_when_silent: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [audit_log_asset(atlassian_conn_id)])
        super().__init__(**kwargs)
        self.window_start = window_start
        self.window_end = window_end
        self.atlassian_conn_id = atlassian_conn_id
        self.qradar_conn_id = qradar_conn_id
        self.query = query
        self.action = action
        self.actor = actor
        self.ip = ip
        self.product = product
        self.log_source_identifier = log_source_identifier
        self.time_zone = time_zone
        self.max_frame_bytes = max_frame_bytes
        self.severity_overrides = severity_overrides
        self.archive_path = archive_path
        self.settle = settle
        self.max_window = max_window
        self.page_size = page_size
        self.requests_per_minute = requests_per_minute
        self.deferrable = deferrable
        self.reconcile_after = reconcile_after
        self.visibility_gap = visibility_gap
        self.silence_after = silence_after
        self.fail_when_silent = fail_when_silent

    # --- entry points ------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate the window, wait for late events if needed, then deliver it."""
        window = self._window()
        qradar = self._qradar_hook()
        self._check_connections(qradar)
        now = datetime.now(timezone.utc)
        if window.end <= now - RETENTION:
            self.log.warning(
                "window %s is entirely older than Atlassian's %d-day audit log retention: the API has no events "
                "there, nothing to deliver",
                window,
                RETENTION.days,
            )
            summary = window_summary(window, fetched=0, sent=0, started=time.monotonic(), stats=None, note="retention")
            self._emit_metrics(context, summary, newest_processed_ms=None, verdict=None)
            return summary
        ready_at = window.end + self.settle
        if now < ready_at:
            wait = (ready_at - now).total_seconds()
            if self.deferrable:
                from airflow.providers.standard.triggers.temporal import DateTimeTrigger

                self.log.info("waiting %.0f s (until %s) for late audit events, deferred", wait, ready_at.isoformat())
                self.defer(trigger=DateTimeTrigger(moment=ready_at), method_name="execute_complete")
            self.log.info("waiting %.0f s in the worker for late audit events (deferrable=False)", wait)
            time.sleep(wait)
        return self._deliver(window, qradar, context)

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the settle wait and deliver the window."""
        window = self._window()
        return self._deliver(window, self._qradar_hook(), context)

    # --- the work ----------------------------------------------------------------------------------------------

    def _check_connections(self, qradar: QRadarHook) -> None:
        """Read both connections before any network call; a configuration error fails the task without retries.

        Unknown protocol, a number that is not one, a missing org id or API key: retrying cannot fix any of them.
        """
        try:
            qradar.validate()
            self._atlassian_hook().validate()
        except ConnectionConfigError as err:
            raise AirflowFailException(
                f"{err} (a configuration error: fix the connection, then clear the task)"
            ) from None

    def _atlassian_hook(self, context: Context | None = None) -> AtlassianAuditLogHook:
        return AtlassianAuditLogHook(
            self.atlassian_conn_id,
            page_size=self.page_size,
            requests_per_minute=self.requests_per_minute,
            share_claimed_at=_task_started_at(context),
        )

    def _qradar_hook(self) -> QRadarHook:
        return QRadarHook(
            self.qradar_conn_id,
            log_source_identifier=self.log_source_identifier,
            max_frame_bytes=self.max_frame_bytes,
            time_zone=self.time_zone,
        )

    def _deliver(self, window: Window, qradar: QRadarHook, context: Context) -> dict[str, Any]:
        try:
            with window_lock(self.atlassian_conn_id, self.qradar_conn_id, window):
                return self._stream(window, qradar, context)
        except ConnectionConfigError as err:
            raise AirflowFailException(str(err)) from None
        except (AtlassianApiError, QRadarDeliveryError) as err:
            # A permanent error needs someone to change something: fail now instead of spending an hour of
            # retries. The others arrive here only after the hooks' own retries; the next attempt resumes.
            if is_permanent(err):
                raise AirflowFailException(str(err)) from None
            raise

    def _stream(self, window: Window, qradar: QRadarHook, context: Context) -> dict[str, Any]:
        started = time.monotonic()
        atlassian = self._atlassian_hook(context)
        checkpoint = TaskCheckpoint.load(context, window, self.log)
        try:
            action_group_names = atlassian.get_action_groups()
        except Exception as err:  # group names are a nicety (cat never depends on them); events must still flow
            self.log.warning("could not read /event-actions (%s); events go without actionGroup", err)
            action_group_names = {}
        org_id = atlassian.org_id
        leef = LeefOptions(
            action_group_names=action_group_names,
            severity_overrides=self.severity_overrides,
            time_zone=qradar.time_zone,
            max_bytes=qradar.leef_budget(),
            org_id=org_id,
        )
        memories = (
            ReconcileStore.open(context, self.atlassian_conn_id, f"{self.dag_id}.{self.task_id}", self.log)
            if self._reconciles()
            else None
        )
        newest = NewestProcessed()
        with qradar.get_sender() as sender:
            earlier = checkpoint.delivered_summary()
            if earlier is not None:
                summary = earlier
                self.log.info("window %s was delivered by an earlier attempt; only reconciling", window)
            else:
                summary = self._first_read(window, atlassian, sender, leef, checkpoint, memories, started, newest)
                if memories is not None:
                    checkpoint.mark_delivered(summary)
            if memories is not None:
                shift = _whole_windows(self.reconcile_after or timedelta(0), window)
                older = Window(window.start - shift, window.end - shift)
                summary["reconcile"] = second_read(older, atlassian, sender, leef, memories, newest, self.log)
            summary["sender_reconnects"] = getattr(sender, "reconnects", 0)
            summary["possibly_duplicated"] = getattr(sender, "possibly_duplicated", 0)
        checkpoint.clear()
        summary["api_requests"] = atlassian.stats.requests
        summary["rate_limit_waits"] = atlassian.stats.rate_limited
        summary["seconds"] = round(time.monotonic() - started, 3)
        if newest.epoch_ms is not None:
            summary["newest_processed_at"] = iso_ms(newest.epoch_ms)
        verdict = self._judge_silence(context, window, summary, newest.epoch_ms)
        record_asset_event(context, self.outlets or [], org_id, summary)
        newest_ever = verdict.record.newest_processed_ms if verdict else newest.epoch_ms
        self._emit_metrics(context, summary, newest_processed_ms=newest_ever, verdict=verdict)
        self.log.info("window %s done: %s", window, json.dumps(summary, sort_keys=True))
        if verdict is not None and verdict.silent:
            self._raise_silence(window, org_id, verdict)
        return summary

    def _first_read(
        self,
        window: Window,
        atlassian: AtlassianAuditLogHook,
        sender: Any,
        leef: LeefOptions,
        checkpoint: TaskCheckpoint,
        memories: ReconcileStore | None,
        started: float,
        newest: NewestProcessed,
    ) -> dict[str, Any]:
        """Deliver the window once, checkpointing past each page QRadar has confirmed; return the summary."""
        archive = WindowArchive(self.archive_path, self.atlassian_conn_id, window) if self.archive_path else None
        # With an archive the whole window must be re-read to rewrite the file; delivery still skips what was sent.
        resume = checkpoint.resume_point(rereading=archive is not None, visibility_gap=self.visibility_gap)
        self.log.info(
            "delivering window %s to QRadar%s",
            window,
            f" (resuming after {resume.delivered} events)" if resume.delivered else "",
        )
        pages = atlassian.iter_pages(
            window.start, window.end, **self._filters(), resume_cursor=resume.cursor, skip=resume.fetched_before
        )
        read = FirstRead(window, resume, checkpoint, archive, newest, keep_memory=self._reconciles())
        with discarding(archive):
            sent = send_batches(read.batches(pages), sender, leef, read.on_safe, self.log, started)
            if archive is not None:
                archive.publish()
        evidence = atlassian.clock_evidence
        clock = evidence.clock
        self.log.info(
            "window %s: the API's from/to filter looks like clock '%s' (%d events outside by time but inside by "
            "processedAt, %d the reverse, %d outside by both)",
            window,
            clock,
            evidence.time_outside,
            evidence.processed_outside,
            evidence.both_outside,
        )
        summary = first_read_summary(window, read.fetched, resume.delivered, sent, started, atlassian.stats, evidence)
        if memories is not None:
            remember_first_read(
                memories,
                window,
                resume.memory,
                clock,
                filtered=any(self._filters().values()),
                reconcile_after=self.reconcile_after or timedelta(0),
                log=self.log,
            )
        return summary

    # --- helpers -----------------------------------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        """The event filters, by the API hook's argument names (any that is set switches to ``/events``)."""
        return {"query": self.query, "action": self.action, "actor": self.actor, "ip": self.ip, "product": self.product}

    def _reconciles(self) -> bool:
        return bool(self.reconcile_after and self.reconcile_after > timedelta(0))

    def _window(self) -> Window:
        return checked_window(self.window_start, self.window_end, self.max_window)

    def _emit_metrics(
        self, context: Context, summary: dict[str, Any], *, newest_processed_ms: int | None, verdict: Verdict | None
    ) -> None:
        dag = context.get("dag")
        tags = {"dag_id": getattr(dag, "dag_id", None) or self.dag_id, "conn_id": self.atlassian_conn_id}
        emit_window_metrics(summary, tags, newest_processed_ms=newest_processed_ms, verdict=verdict)

    def _judge_silence(
        self, context: Context, window: Window, summary: dict[str, Any], newest_ms: int | None
    ) -> Verdict | None:
        if not self.silence_after or self.silence_after <= timedelta(0):
            return None
        span = _whole_windows(self.silence_after, window)
        return judge_silence(context, self.atlassian_conn_id, window, summary, newest_ms, span, self.log)

    def _raise_silence(self, window: Window, org_id: str, verdict: Verdict) -> None:
        """Log the silent-source warning (what to check) and fail the task if the user opted in."""
        filters = {name: value for name, value in self._filters().items() if value}
        message = silence_message(org_id, self.atlassian_conn_id, window, verdict, filters)
        self.log.warning("%s", message)
        if self.fail_when_silent:
            raise AirflowFailException(
                f"{message}. The window itself was delivered; this task fails because fail_when_silent is on "
                "(ATLASSIAN_QRADAR_FAIL_WHEN_SILENT): it stops failing once an event is delivered, or set "
                "ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES=0 to turn the alarm off"
            )


def _task_started_at(context: Context | None) -> float | None:
    """When this task took its slot of the API budget (epoch s): the later of its process start and its start.

    The scheduler grants a slot only after the previous holder finished, and this task's process and its start
    both come after that grant, so pacing from here keeps every slot's requests one interval apart. In a process
    that runs many tasks (``airflow dags test``) the process is older than the task; its start then decides.
    """
    if context is None:
        return None
    started = getattr(context.get("ti"), "start_date", None)
    if not isinstance(started, datetime):
        return None  # unknown: the hook counts from now, which is always safe
    return max(started.timestamp(), psutil.Process().create_time())


def _whole_windows(span: timedelta, window: Window) -> timedelta:
    """Round ``span`` up to a whole number of windows, so the shifted window is one the DAG really ran."""
    length = window.end - window.start
    return length * max(1, math.ceil(span / length))
