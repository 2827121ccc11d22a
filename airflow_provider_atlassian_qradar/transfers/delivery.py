"""The page-delivery loop: pages of events -> LEEF -> QRadar, each page's token passed on once QRadar confirmed it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_atlassian_qradar.leef import LeefOptions
from airflow_provider_atlassian_qradar.transfers.archive import WindowArchive
from airflow_provider_atlassian_qradar.transfers.checkpoint import ResumePoint, TaskCheckpoint, progress_value
from airflow_provider_atlassian_qradar.windows import Window


class Batch(NamedTuple):
    """One page's events to send, their times (epoch ms), and the token to pass on once QRadar confirmed them."""

    events: list[dict[str, Any]]
    times_ms: list[int | None]
    token: Any


@dataclass(frozen=True)
class Sent:
    """What :func:`send_batches` delivered: events sent, and how many of them were cut to fit the frame budget."""

    events: int
    truncated: int


class NewestProcessed:
    """The newest processedAt (epoch ms) among the events this task handed to QRadar."""

    def __init__(self) -> None:
        self.epoch_ms: int | None = None

    def note(self, processed_ms: Iterable[int | None]) -> None:
        """Take the processedAt values of events about to be sent (None: the event had none)."""
        known = [value for value in processed_ms if value is not None]
        if known and (self.epoch_ms is None or max(known) > self.epoch_ms):
            self.epoch_ms = max(known)


def send_batches(
    batches: Iterable[Batch],
    sender: Any,
    leef: LeefOptions,
    on_safe: Callable[[Any], None],
    log: Any,
    started: float,
) -> Sent:
    """Send batches; call ``on_safe(token)`` once QRadar confirmed a batch.

    "Handed over" is not "received": after each batch the sender gets a receipt (TCP/TLS: the receiver closed
    cleanly after reading everything; HTTP: the 2xx), and only then is the batch's token passed on. Without a
    receipt (UDP) the previous batch's token is passed instead, so the checkpoint trails by one page: at most one
    page twice, nothing lost. The receipt is awaited after the next batch is fetched, so the receiver works
    while we fetch.
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
        for batch in batches:
            if awaiting is not None:
                pending, awaiting = awaiting, None
                settle(pending)
            records = []
            for event, time_ms in zip(batch.events, batch.times_ms, strict=True):
                line, cut = leef.encode(event)
                truncated += cut
                records.append((line, time_ms))
            if records:
                sender.send(records)
                sent += len(records)
            sender.request_receipt()
            awaiting, previous = (batch.token, previous), batch.token
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
    return Sent(events=sent, truncated=truncated)


class FirstRead:
    """A window's first read: its pages, minus what earlier attempts delivered, as batches to send.

    Each batch's token is the checkpoint value past its page; :meth:`on_safe` stores it once QRadar confirmed.

    :param keep_memory: whether checkpoints carry the first-read memory (the task reconciles late events).
    """

    def __init__(
        self,
        window: Window,
        resume: ResumePoint,
        checkpoint: TaskCheckpoint,
        archive: WindowArchive | None,
        newest: NewestProcessed,
        *,
        keep_memory: bool,
    ) -> None:
        self._window = window
        self._resume = resume
        self._checkpoint = checkpoint
        self._archive = archive
        self._newest = newest
        self._keep_memory = keep_memory
        #: Events of the window fetched so far (by this attempt or, before the cursor, by earlier ones).
        self.fetched = resume.fetched_before

    def batches(self, pages: Iterable[Any]) -> Iterator[Batch]:
        """Turn the API's pages into batches, dropping the events an earlier attempt delivered."""
        memory = self._resume.memory
        to_skip_sending = self._resume.skip_sending
        for page in pages:
            self.fetched += len(page.events)
            if self._archive is not None:
                self._archive.write(page.events)
            events, times_ms, processed_ms = page.events, page.times_ms, page.processed_ms
            if to_skip_sending:
                dropped = min(to_skip_sending, len(events))
                events, times_ms, processed_ms = events[dropped:], times_ms[dropped:], processed_ms[dropped:]
                to_skip_sending -= dropped
            self._newest.note(processed_ms)
            memory.note((event["id"] for event in page.events), page.processed_ms)
            consumed = page.position + len(page.events)
            token = progress_value(
                self._window,
                page.next_cursor,
                consumed,
                self._resume.read_started,
                memory if self._keep_memory else None,
            )
            yield Batch(events, times_ms, token)

    def on_safe(self, value: dict[str, Any]) -> None:
        """Checkpoint past a confirmed page (never behind what earlier attempts delivered)."""
        if int(value["delivered"]) > self._resume.delivered:
            self._checkpoint.save(value)
