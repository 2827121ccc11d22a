"""Operator that streams one window of the Atlassian organization audit log to IBM QRadar as LEEF 2.0.

Data flow per page: Atlassian API -> LEEF encoder -> QRadar transport -> receipt -> checkpoint. Memory stays flat
whatever the window size; a retry resumes after the last checkpoint, so at most one page is delivered twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pendulum
import psutil
from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowException

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]

from airflow_provider_atlassian_qradar import metrics
from airflow_provider_atlassian_qradar.connection_fields import ConnectionConfigError
from airflow_provider_atlassian_qradar.hooks.atlassian import AtlassianApiError, AtlassianAuditLogHook
from airflow_provider_atlassian_qradar.hooks.qradar import QRadarHook
from airflow_provider_atlassian_qradar.leef import LeefOptions
from airflow_provider_atlassian_qradar.reconcile import (
    DEFAULT_VISIBILITY_GAP,
    FirstReadMemory,
    needs_second_read,
    select_late,
)
from airflow_provider_atlassian_qradar.silence import DEFAULT_SILENCE_AFTER, DeliveryRecord, Verdict, assess
from airflow_provider_atlassian_qradar.silence import STATE_KEY as SILENCE_STATE_KEY
from airflow_provider_atlassian_qradar.transport import QRadarDeliveryError
from airflow_provider_atlassian_qradar.windows import RETENTION, Window

if TYPE_CHECKING:
    from airflow.sdk import Context

CHECKPOINT_KEY = "atlassian_to_qradar_checkpoint"
DEFAULT_SETTLE = timedelta(minutes=15)
DEFAULT_MAX_WINDOW = timedelta(days=1)
DEFAULT_RECONCILE_AFTER = timedelta(hours=24)
#: Key prefix of the first-read memories in the organization's asset state store (one per window).
RECONCILE_KEY_PREFIX = "first_read/"
#: Environment variable naming the directory of the per-window delivery locks (default: under AIRFLOW_HOME, so
#: one Airflow installation's tasks on a host share them, and another installation's never block them).
WINDOW_LOCK_DIR_ENV = "ATLASSIAN_QRADAR_LOCK_DIR"


def window_lock_dir() -> str:
    """The directory of the per-window delivery locks: ``$ATLASSIAN_QRADAR_LOCK_DIR`` or ``$AIRFLOW_HOME/locks``."""
    explicit = os.environ.get(WINDOW_LOCK_DIR_ENV, "").strip()
    if explicit:
        return explicit
    home = os.environ.get("AIRFLOW_HOME", "").strip() or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(home, "locks", "atlassian-qradar")


def audit_log_asset(atlassian_conn_id: str) -> Asset:
    """Return the Asset that stands for one organization's audit log in QRadar (one connection = one org)."""
    return Asset(name=f"atlassian_audit_log__{atlassian_conn_id}", uri=f"atlassian-audit://{atlassian_conn_id}")


class AtlassianAuditLogToQRadarOperator(BaseOperator):
    """Deliver every Atlassian audit event of ``[window_start, window_end)`` to QRadar once.

    Waits (deferred, not in a worker slot) until ``window_end + settle`` so late-exposed events are included, then
    streams page by page. Once QRadar has given a receipt for a page (TCP/TLS: it closed the connection after
    reading everything; HTTP: the 2xx) the operator checkpoints past it in the task state store (Airflow 3.3+):
    a retry resumes after the last page with a receipt. Without receipts (UDP) the checkpoint trails one page.
    On success the checkpoint is cleared, so a later clear/rerun re-delivers the whole window.

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
    :param reconcile_after: after delivering its window, the task reads once more the window that ended this long
        before (rounded up to whole windows; default 24 h) and sends the events that became visible since that
        window's first read. ``None`` or ``timedelta(0)`` turns it off. Needs Airflow 3.3+ (asset state store).
    :param visibility_gap: how long before a first read an event may have been processed and still not have been
        visible to it (default 5 min); the second read re-checks events processed after ``first read - gap``.
    :param silence_after: the silent-source alarm: when no event has been delivered for this much window time
        (rounded up to whole windows; default 24 h), the newest recent window's task logs a warning naming what to
        check and sends the ``silent_source`` metric. ``None`` or ``timedelta(0)`` turns it off. Backfills and
        reruns of old windows never trip it (see :mod:`~airflow_provider_atlassian_qradar.silence`). Needs
        Airflow 3.3+ (asset state store).
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
            summary = self._summary(window, fetched=0, sent=0, started=time.monotonic(), stats=None, note="retention")
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

    def _deliver(self, window: Window, qradar: QRadarHook, context: Context) -> dict[str, Any]:
        try:
            with _window_lock(self.atlassian_conn_id, self.qradar_conn_id, window):
                return self._stream(window, qradar, context)
        except ConnectionConfigError as err:
            raise AirflowFailException(str(err)) from None
        except AtlassianApiError as err:
            # 400/401/403/404 and a refused foreign link need someone to change something: fail now instead of
            # spending an hour of retries. 429/5xx/network errors arrive here only after the hook's own retries
            # and stay retryable (the next attempt resumes from the checkpoint).
            if err.permanent:
                raise AirflowFailException(str(err)) from None
            raise
        except QRadarDeliveryError as err:
            if err.permanent:
                raise AirflowFailException(str(err)) from None
            raise

    def _stream(self, window: Window, qradar: QRadarHook, context: Context) -> dict[str, Any]:
        started = time.monotonic()
        atlassian = self._atlassian_hook(context)
        store = context.get("task_state_store")
        checkpoint = self._load_checkpoint(store, window)
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
            _ReconcileStore.open(context, self.atlassian_conn_id, f"{self.dag_id}.{self.task_id}", self.log)
            if self._reconciles()
            else None
        )
        newest = _NewestProcessed()
        with qradar.get_sender() as sender:
            if checkpoint and checkpoint.get("phase") == "reconcile":
                # An earlier attempt delivered this window and failed while reconciling the older one.
                summary = dict(checkpoint["summary"])
                self.log.info("window %s was delivered by an earlier attempt; only reconciling", window)
            else:
                summary = self._first_read(
                    window, atlassian, sender, leef, store, checkpoint, memories, started, newest
                )
                if memories is not None and store is not None:
                    store.set(CHECKPOINT_KEY, {"window": window.label(), "phase": "reconcile", "summary": summary})
            if memories is not None:
                summary["reconcile"] = self._second_read(window, atlassian, sender, leef, memories, newest)
            summary["sender_reconnects"] = getattr(sender, "reconnects", 0)
            summary["possibly_duplicated"] = getattr(sender, "possibly_duplicated", 0)
        if store is not None:
            store.delete(CHECKPOINT_KEY)
        summary["api_requests"] = atlassian.stats.requests
        summary["rate_limit_waits"] = atlassian.stats.rate_limited
        summary["seconds"] = round(time.monotonic() - started, 3)
        if newest.epoch_ms is not None:
            summary["newest_processed_at"] = _iso_ms(newest.epoch_ms)
        verdict = self._judge_silence(context, window, summary, newest.epoch_ms)
        self._record_asset_event(context, org_id, summary)
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
        store: Any,
        checkpoint: dict[str, Any] | None,
        memories: _ReconcileStore | None,
        started: float,
        newest: _NewestProcessed,
    ) -> dict[str, Any]:
        """Deliver the window once, checkpointing past each page QRadar has confirmed; return the summary."""
        archive = _Archive(self.archive_path, self.atlassian_conn_id, window) if self.archive_path else None
        # With an archive the whole window must be re-read to rewrite the file; delivery still skips what was sent.
        resume_cursor = checkpoint.get("cursor") if checkpoint and archive is None else None
        already_sent = int(checkpoint.get("delivered", 0)) if checkpoint else 0
        fetched_skip = already_sent if resume_cursor else 0
        to_skip_sending = 0 if resume_cursor else already_sent
        # The first attempt's start decides what a late second read may find (see reconcile.py).
        read_started = (
            datetime.fromisoformat(checkpoint["read_started"])
            if checkpoint and checkpoint.get("read_started")
            else datetime.now(timezone.utc)
        )
        memory = FirstReadMemory.starting(read_started, self.visibility_gap)
        saved_memory = FirstReadMemory.from_json(checkpoint.get("memory")) if checkpoint else None
        if saved_memory is not None:
            memory = saved_memory
        counts = {"fetched": fetched_skip}
        self.log.info(
            "delivering window %s to QRadar%s",
            window,
            f" (resuming after {already_sent} events)" if already_sent else "",
        )
        pages = atlassian.iter_pages(
            window.start,
            window.end,
            query=self.query,
            action=self.action,
            actor=self.actor,
            ip=self.ip,
            product=self.product,
            resume_cursor=resume_cursor,
            skip=fetched_skip,
        )

        def batches() -> Iterator[tuple[list[dict[str, Any]], list[int | None], dict[str, Any]]]:
            nonlocal to_skip_sending
            for page in pages:
                counts["fetched"] += len(page.events)
                if archive is not None:
                    archive.write(page.events)
                events, times_ms, processed_ms = page.events, page.times_ms, page.processed_ms
                if to_skip_sending:
                    dropped = min(to_skip_sending, len(events))
                    events, times_ms, processed_ms = events[dropped:], times_ms[dropped:], processed_ms[dropped:]
                    to_skip_sending -= dropped
                newest.note(processed_ms)
                memory.note((event["id"] for event in page.events), page.processed_ms)
                consumed = page.position + len(page.events)
                yield events, times_ms, self._checkpoint_value(window, page.next_cursor, consumed, read_started, memory)

        def on_safe(value: dict[str, Any]) -> None:
            if store is not None and int(value["delivered"]) > already_sent:
                store.set(CHECKPOINT_KEY, value)

        with _closing(archive):
            sent, truncated = _send_batches(batches(), sender, leef, on_safe, self.log, started)
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
        summary = self._summary(
            window,
            fetched=counts["fetched"],
            sent=already_sent + sent,
            started=started,
            stats=atlassian.stats,
            truncated=truncated,
        )
        summary["resumed_after"] = already_sent
        summary["filter_clock"] = clock
        summary["clock_evidence"] = {
            "time_outside_window": evidence.time_outside,
            "processed_outside_window": evidence.processed_outside,
            "both_outside_window": evidence.both_outside,
        }
        if memories is not None:
            self._remember_first_read(window, memory, clock, memories)
        return summary

    def _remember_first_read(
        self, window: Window, memory: FirstReadMemory, clock: str, memories: _ReconcileStore
    ) -> None:
        """Keep what the window's second read needs, or drop any stale memory when it needs no second read."""
        filtered = any((self.query, self.action, self.actor, self.ip, self.product))
        reason = "filtered windows (/events) carry no processedAt" if filtered else None
        reason = reason or needs_second_read(memory, window, self.reconcile_after or timedelta(0), clock)
        if reason:
            self.log.info("window %s needs no second read: %s", window, reason)
            memories.forget(window)
            return
        memories.remember(window, memory)

    def _second_read(
        self,
        window: Window,
        atlassian: AtlassianAuditLogHook,
        sender: Any,
        leef: LeefOptions,
        memories: _ReconcileStore,
        newest: _NewestProcessed,
    ) -> dict[str, Any]:
        """Read the window that ended ``reconcile_after`` ago once more and send what its first read missed."""
        shift = _whole_windows(self.reconcile_after or timedelta(0), window)
        older = Window(window.start - shift, window.end - shift)
        result: dict[str, Any] = {"window_start": older.start.isoformat(), "window_end": older.end.isoformat()}
        memory = memories.recall(older)
        if memory is None:
            self.log.info("reconcile %s: no first-read memory (never read, read late, or done): nothing to do", older)
            return {**result, "late_delivered": 0, "api_requests": 0, "note": "nothing to reconcile"}
        requests_before = atlassian.stats.requests
        delivered_ids: list[str] = []

        def walk(newest_first: bool) -> Iterator[tuple[list[dict[str, Any]], list[int | None], list[str]]]:
            pages = atlassian.iter_pages(older.start, older.end, newest_first=newest_first)
            try:
                for page in pages:
                    chosen, done = select_late(page.events, page.processed_ms, memory, newest_first=newest_first)
                    events = [page.events[index] for index in chosen]
                    newest.note(page.processed_ms[index] for index in chosen)
                    delivered_ids.extend(event["id"] for event in events)
                    yield events, [page.times_ms[index] for index in chosen], list(delivered_ids)
                    if done:
                        return  # newest first: the rest of the window was processed before the first read
            finally:
                pages.close()

        def on_safe(ids: list[str]) -> None:
            memory.note(ids, [None] * len(ids))
            memories.remember(older, memory)

        try:
            sent, _ = _send_batches(walk(True), sender, leef, on_safe, self.log, time.monotonic())
        except AtlassianApiError as err:
            if err.status != 400 or delivered_ids:
                raise
            self.log.warning("the API refused sortOrder=desc (%s); reconciling %s in ascending order", err, older)
            sent, _ = _send_batches(walk(False), sender, leef, on_safe, self.log, time.monotonic())
        memories.forget(older)
        requests = atlassian.stats.requests - requests_before
        self.log.info(
            "reconciled window %s: %d late events delivered that its first read had not seen (%d API requests)",
            older,
            sent,
            requests,
        )
        return {**result, "late_delivered": sent, "api_requests": requests}

    def _reconciles(self) -> bool:
        return bool(self.reconcile_after and self.reconcile_after > timedelta(0))

    def _checkpoint_value(
        self, window: Window, cursor: str | None, delivered: int, read_started: datetime, memory: FirstReadMemory
    ) -> dict[str, Any]:
        """A checkpoint: the first ``delivered`` events of the window are safe; ``cursor`` fetches the rest.

        Without a cursor a retry re-reads the window from its start and skips ``delivered`` events by position.
        """
        value: dict[str, Any] = {
            "window": window.label(),
            "delivered": delivered,
            "read_started": read_started.isoformat(),
        }
        if cursor:
            value["cursor"] = cursor
        if self._reconciles():
            value["memory"] = memory.to_json()
        return value

    # --- helpers -----------------------------------------------------------------------------------------------

    def _window(self) -> Window:
        start, end = _as_datetime(self.window_start, "window_start"), _as_datetime(self.window_end, "window_end")
        window = Window(start, end)
        if window.end - window.start > self.max_window:
            raise AirflowFailException(
                f"window {window} is longer than max_window={self.max_window}: split it (the DAG's hourly "
                "intervals do) or raise max_window on the operator"
            )
        now = datetime.now(timezone.utc)
        if window.end > now + timedelta(minutes=1):
            raise AirflowException(
                f"window {window} ends in the future (now is {now.isoformat()}): events there do not exist yet; "
                "pass a window that has ended"
            )
        return window

    def _qradar_hook(self) -> QRadarHook:
        return QRadarHook(
            self.qradar_conn_id,
            log_source_identifier=self.log_source_identifier,
            max_frame_bytes=self.max_frame_bytes,
            time_zone=self.time_zone,
        )

    def _load_checkpoint(self, store: Any, window: Window) -> dict[str, Any] | None:
        if store is None:
            self.log.warning(
                "this Airflow has no task state store (needs 3.3+): a retry re-sends the whole window, so QRadar "
                "may receive duplicates of what an earlier attempt delivered"
            )
            return None
        saved = store.get(CHECKPOINT_KEY)
        if not isinstance(saved, dict) or saved.get("window") != window.label():
            return None
        self.log.info(
            "found a checkpoint from an earlier attempt: %s",
            "window delivered" if saved.get("phase") else f"{saved.get('delivered', 0)} events already delivered",
        )
        return saved

    def _summary(
        self,
        window: Window,
        *,
        fetched: int,
        sent: int,
        started: float,
        stats: Any,
        truncated: int = 0,
        note: str | None = None,
    ) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "fetched": fetched,
            "sent": sent,
            "duplicates_skipped": stats.duplicates_skipped if stats else 0,
            "truncated": truncated,
            "api_requests": stats.requests if stats else 0,
            "rate_limit_waits": stats.rate_limited if stats else 0,
            "seconds": round(time.monotonic() - started, 3),
        }
        if note:
            summary["note"] = note
        return summary

    def _emit_metrics(
        self,
        context: Context,
        summary: dict[str, Any],
        *,
        newest_processed_ms: int | None,
        verdict: Verdict | None,
    ) -> None:
        """Send the window's metrics through Airflow's stats client (a no-op unless metrics are configured)."""
        lag = None
        if newest_processed_ms is not None:
            lag = time.time() - newest_processed_ms / 1000.0
        dag = context.get("dag")
        tags = {"dag_id": getattr(dag, "dag_id", None) or self.dag_id, "conn_id": self.atlassian_conn_id}
        values = metrics.window_metrics(summary, lag_seconds=lag)
        if verdict is not None and verdict.silence is not None:
            values += metrics.silence_metrics(verdict.silence.total_seconds(), silent=verdict.silent)
        metrics.emit(values, tags)

    def _silence_span(self, window: Window) -> timedelta | None:
        if not self.silence_after or self.silence_after <= timedelta(0):
            return None
        return _whole_windows(self.silence_after, window)

    def _judge_silence(
        self, context: Context, window: Window, summary: dict[str, Any], newest_ms: int | None
    ) -> Verdict | None:
        """Update the organization's delivery record and judge the silent-source alarm for this window."""
        span = self._silence_span(window)
        if span is None:
            return None
        accessor = _asset_accessor(context, self.atlassian_conn_id)
        if accessor is None:
            self.log.warning(
                "this Airflow has no asset state store (needs 3.3+): the silent-source alarm is off; "
                "pass silence_after=None to silence this"
            )
            return None
        delivered = int(summary.get("sent", 0)) + int((summary.get("reconcile") or {}).get("late_delivered", 0))
        try:
            previous = DeliveryRecord.from_json(accessor.get(SILENCE_STATE_KEY))
        except Exception as err:  # the alarm is an aid: its state must never fail a delivered window
            self.log.warning("could not read the silent-source alarm's record (%s); the alarm skips this window", err)
            return None
        verdict = assess(
            previous,
            window,
            delivered=delivered,
            newest_processed_ms=newest_ms,
            now=datetime.now(timezone.utc),
            silence_after=span,
        )
        try:
            accessor.set(SILENCE_STATE_KEY, verdict.record.to_json())
        except Exception as err:
            self.log.warning("could not store the silent-source alarm's record (%s); the alarm skips this window", err)
            return None
        summary["silence"] = {
            "judged": verdict.judged,
            "silent": verdict.silent,
            "silence_hours": round(verdict.silence.total_seconds() / 3600, 2) if verdict.silence is not None else None,
            "since": verdict.since.isoformat() if verdict.since else None,
        }
        return verdict

    def _raise_silence(self, window: Window, org_id: str, verdict: Verdict) -> None:
        """Log the silent-source warning (what to check) and fail the task if the user opted in."""
        filters = {
            name: value
            for name, value in (
                ("query", self.query),
                ("action", self.action),
                ("actor", self.actor),
                ("ip", self.ip),
                ("product", self.product),
            )
            if value
        }
        hours = (verdict.silence or timedelta(0)).total_seconds() / 3600
        since = verdict.since.isoformat() if verdict.since else "?"
        message = (
            f"silent source: no audit event of organization {org_id} ({self.atlassian_conn_id!r}) has been "
            f"delivered for {hours:g} h of windows (since {since}, up to the end of window {window}). Check: "
            "the API key has not expired or been revoked and still has scope read:events:admin (Atlassian "
            "Administration > Settings > API keys); the organization still has an Atlassian Guard subscription "
            "(the audit log API needs it); "
            + (
                f"the filter {filters} is not narrower than intended; "
                if filters
                else "no filter is set (the whole audit log is read); "
            )
            + "and whether the organization really had no admin activity"
        )
        self.log.warning("%s", message)
        if self.fail_when_silent:
            raise AirflowFailException(
                f"{message}. The window itself was delivered; this task fails because fail_when_silent is on "
                "(ATLASSIAN_QRADAR_FAIL_WHEN_SILENT): it stops failing once an event is delivered, or set "
                "ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES=0 to turn the alarm off"
            )

    def _record_asset_event(self, context: Context, org_id: str, summary: dict[str, Any]) -> None:
        outlet_events = context.get("outlet_events")
        if outlet_events is None:
            return
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                outlet_events[outlet].extra = {
                    "org_id": org_id,
                    "window_start": summary["window_start"],
                    "window_end": summary["window_end"],
                    "sent": summary["sent"],
                }


def _send_batches(
    batches: Iterable[tuple[list[dict[str, Any]], list[int | None], Any]],
    sender: Any,
    leef: LeefOptions,
    on_safe: Callable[[Any], None],
    log: Any,
    started: float,
) -> tuple[int, int]:
    """Send ``(events, times in ms, token)`` batches; call ``on_safe(token)`` once QRadar confirmed a batch.

    "Handed over" is not "received": after each batch the sender gets a receipt (TCP/TLS: the receiver closed
    cleanly after reading everything; HTTP: the 2xx), and only then is the batch's token passed on. Without a
    receipt (UDP, a receiver that gives none) the previous batch's token is passed instead, so the checkpoint
    trails by one page and a retry re-sends it: at most one page twice, nothing lost. The receipt is requested
    after a batch is sent and awaited after the next batch is fetched, so the receiver works while we fetch.

    :return: (events sent, events truncated to fit the frame budget).
    """
    sent = truncated = batch_count = 0
    awaiting: tuple[Any, Any] | None = None  # (token of the batch sent last, token of the one before)
    previous: Any = None

    def settle(pending: tuple[Any, Any]) -> None:
        token, fallback = pending
        if sender.confirm():
            on_safe(token)
        elif fallback is not None:
            on_safe(fallback)

    try:
        for events, times_ms, token in batches:
            if awaiting is not None:
                pending, awaiting = awaiting, None
                settle(pending)
            records = []
            for event, time_ms in zip(events, times_ms, strict=True):
                line = leef.format(event)
                if "\ttruncated=" in line:
                    truncated += 1
                records.append((line, time_ms))
            if records:
                sender.send(records)
                sent += len(records)
            sender.request_receipt()
            awaiting, previous = (token, previous), token
            batch_count += 1
            log.info(
                "page %d: %d events sent (%.0f events/s)",
                batch_count,
                sent,
                sent / max(time.monotonic() - started, 1e-6),
            )
    except Exception:
        if awaiting is not None:
            # The API failed after a page was sent: still take its receipt, so a retry resumes after it.
            with contextlib.suppress(Exception):
                settle(awaiting)
        raise
    if awaiting is not None:
        settle(awaiting)
    return sent, truncated


class _NewestProcessed:
    """The newest processedAt (epoch ms) among the events this task handed to QRadar."""

    def __init__(self) -> None:
        self.epoch_ms: int | None = None

    def note(self, processed_ms: Iterable[int | None]) -> None:
        """Take the processedAt values of events about to be sent (None: the event had none)."""
        known = [value for value in processed_ms if value is not None]
        if known and (self.epoch_ms is None or max(known) > self.epoch_ms):
            self.epoch_ms = max(known)


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


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000.0, tz=timezone.utc).isoformat(timespec="milliseconds")


def _whole_windows(span: timedelta, window: Window) -> timedelta:
    """Round ``span`` up to a whole number of windows, so the shifted window is one the DAG really ran."""
    length = window.end - window.start
    return length * max(1, math.ceil(span / length))


def _asset_accessor(context: Any, atlassian_conn_id: str) -> Any:
    """The organization's asset state store (get/set/delete), or None on an Airflow without one (before 3.3)."""
    stores = context.get("asset_state_store")
    if stores is None:
        return None
    asset = audit_log_asset(atlassian_conn_id)
    try:
        return stores[asset]
    except (KeyError, TypeError):  # the user replaced the outlets: address the asset by name
        from airflow.sdk.execution_time.context import AssetStateStoreAccessor

        return AssetStateStoreAccessor(name=asset.name)


class _ReconcileStore:
    """First-read memories, one per window, in the organization's asset state store (Airflow 3.3+).

    The asset (``audit_log_asset``) stands for one organization and is shared by every DAG reading it, so each
    memory is keyed by the delivering task (``dag_id.task_id``) as well as the window: two DAGs delivering the same
    organization (to two destinations) each reconcile their own first reads. Memories live in Airflow's database
    (they survive worker restarts) and are deleted once reconciled.
    """

    def __init__(self, accessor: Any, reader: str) -> None:
        self._accessor = accessor
        self._reader = reader

    @classmethod
    def open(cls, context: Any, atlassian_conn_id: str, reader: str, log: Any) -> _ReconcileStore | None:
        """The store of this task's organization, or None (with a warning) on an Airflow without one."""
        accessor = _asset_accessor(context, atlassian_conn_id)
        if accessor is None:
            log.warning(
                "this Airflow has no asset state store (needs 3.3+): late events are not reconciled; "
                "pass reconcile_after=None to silence this"
            )
            return None
        return cls(accessor, reader)

    def _key(self, window: Window) -> str:
        return f"{RECONCILE_KEY_PREFIX}{self._reader}/{window.label()}"

    def remember(self, window: Window, memory: FirstReadMemory) -> None:
        """Store (or replace) the memory of a window's first read."""
        self._accessor.set(self._key(window), memory.to_json())

    def recall(self, window: Window) -> FirstReadMemory | None:
        """The memory of a window's first read, if one is kept."""
        return FirstReadMemory.from_json(self._accessor.get(self._key(window)))

    def forget(self, window: Window) -> None:
        """Delete a window's memory (no-op when there is none)."""
        self._accessor.delete(self._key(window))


@contextmanager
def _window_lock(atlassian_conn_id: str, qradar_conn_id: str, window: Window) -> Iterator[None]:
    """Hold the delivery lock of one window and pair of connections, or fail at once if another run holds it.

    Two runs of the same window at the same time (a manual run beside the scheduled one, a backfill over a running
    hour) would each deliver everything: QRadar would get the window twice without anyone noticing. The lock is an
    ``flock`` on a file keyed by the window and both connection ids, so it is released by the kernel whatever
    happens to the process (even SIGKILL). It guards the runs of one Airflow installation on one host
    (:func:`window_lock_dir`; LocalExecutor, or one Celery worker host); it does not see a run on another host.
    Different windows never wait for each other.

    :raises AirflowFailException: naming the window and what to do, when another run holds the lock.
    """
    key = hashlib.sha256(f"{atlassian_conn_id}\0{qradar_conn_id}\0{window.label()}".encode()).hexdigest()[:32]
    directory = window_lock_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{key}.lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(handle, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise AirflowFailException(
                f"another run is delivering window {window} from {atlassian_conn_id!r} to {qradar_conn_id!r} "
                f"right now (process {holder} on this host): this attempt stops so that QRadar does not get the "
                "window twice at the same time. If you meant to deliver it again, clear this task once that run "
                "has finished"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


@contextmanager
def _closing(archive: _Archive | None) -> Iterator[None]:
    """Remove the archive's local file whatever happens (publish() copies it first on success)."""
    try:
        yield
    finally:
        if archive is not None:
            archive.discard()


class _Archive:
    """Write a window's raw events as gzipped JSON Lines to a local file, then publish it to its final path."""

    def __init__(self, archive_path: Any, atlassian_conn_id: str, window: Window) -> None:
        from airflow.sdk import ObjectStoragePath

        base = archive_path if isinstance(archive_path, ObjectStoragePath) else ObjectStoragePath(str(archive_path))
        self.destination = base / atlassian_conn_id / f"{window.label()}.jsonl.gz"
        handle, self._local = tempfile.mkstemp(suffix=".jsonl.gz")
        os.close(handle)
        self._file = gzip.open(self._local, "wt", encoding="utf-8")

    def write(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._file.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            self._file.write("\n")

    def publish(self) -> None:
        self._file.close()
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        with open(self._local, "rb") as source, self.destination.open("wb") as target:
            shutil.copyfileobj(source, target, length=1 << 20)

    def discard(self) -> None:
        """Delete the local file (after publishing, or after a failed attempt: raw events must not linger)."""
        self._file.close()
        if os.path.exists(self._local):
            os.unlink(self._local)


def _as_datetime(value: Any, name: str) -> datetime:
    # A window bound that cannot be read will not be readable on a retry either: fail at once.
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = pendulum.parse(value.strip())  # type: ignore[assignment]
        except Exception as err:
            raise AirflowFailException(f"{name}={value!r} is not an ISO 8601 date-time: {err}") from None
    else:
        raise AirflowFailException(f"{name} is empty: pass an ISO 8601 date-time or a datetime")
    if not isinstance(moment, datetime):
        raise AirflowFailException(f"{name}={value!r} is a date or duration, not a date-time")
    if moment.tzinfo is None:
        raise AirflowFailException(f"{name}={value!r} has no time zone: add one, e.g. +00:00")
    return moment
