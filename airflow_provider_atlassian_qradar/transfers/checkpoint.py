"""The task's checkpoint in its task state store (Airflow 3.3+): how far earlier attempts delivered the window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_atlassian_qradar.reconcile import FirstReadMemory
from airflow_provider_atlassian_qradar.windows import Window

CHECKPOINT_KEY = "atlassian_to_qradar_checkpoint"
#: Phase marker: the window was delivered, only the reconciliation of an older window was left.
PHASE_RECONCILE = "reconcile"


@dataclass(frozen=True)
class ResumePoint:
    """Where this attempt's first read starts, from an earlier attempt's checkpoint (nothing on a first attempt).

    :param cursor: fetch the rest of the window from here; None re-reads the window from its start.
    :param delivered: how many of the window's first events earlier attempts delivered.
    :param read_started: when the first attempt started reading (it decides what a second read may find).
    :param memory: the first read's memory so far.
    """

    cursor: str | None
    delivered: int
    read_started: datetime
    memory: FirstReadMemory

    @property
    def fetched_before(self) -> int:
        """Events the cursor skips: they are not fetched again."""
        return self.delivered if self.cursor else 0

    @property
    def skip_sending(self) -> int:
        """Events fetched again from the window's start but not sent again."""
        return 0 if self.cursor else self.delivered


def progress_value(
    window: Window, cursor: str | None, delivered: int, read_started: datetime, memory: FirstReadMemory | None
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
    if memory is not None:
        value["memory"] = memory.to_json()
    return value


class TaskCheckpoint:
    """This task's checkpoint of one window, or a no-op on an Airflow without a task state store."""

    def __init__(self, store: Any, window: Window, saved: dict[str, Any] | None) -> None:
        self._store = store
        self._window = window
        #: What an earlier attempt saved for this window, if anything.
        self.saved = saved

    @classmethod
    def load(cls, context: Any, window: Window, log: Any) -> TaskCheckpoint:
        """Read the checkpoint an earlier attempt left for ``window`` (a checkpoint of another window is ignored)."""
        store = context.get("task_state_store")
        if store is None:
            log.warning(
                "this Airflow has no task state store (needs 3.3+): a retry re-sends the whole window, so QRadar "
                "may receive duplicates of what an earlier attempt delivered"
            )
            return cls(None, window, None)
        saved = store.get(CHECKPOINT_KEY)
        if not isinstance(saved, dict) or saved.get("window") != window.label():
            return cls(store, window, None)
        log.info(
            "found a checkpoint from an earlier attempt: %s",
            "window delivered" if saved.get("phase") else f"{saved.get('delivered', 0)} events already delivered",
        )
        return cls(store, window, saved)

    def delivered_summary(self) -> dict[str, Any] | None:
        """The summary of an earlier attempt that delivered the window and failed while reconciling an older one."""
        if self.saved and self.saved.get("phase") == PHASE_RECONCILE:
            return dict(self.saved["summary"])
        return None

    def resume_point(self, *, rereading: bool, visibility_gap: timedelta) -> ResumePoint:
        """Where the first read starts; ``rereading`` fetches the whole window again (delivery still skips)."""
        saved = self.saved or {}
        cursor = saved.get("cursor") if not rereading else None
        read_started = (
            datetime.fromisoformat(saved["read_started"]) if saved.get("read_started") else datetime.now(timezone.utc)
        )
        memory = FirstReadMemory.from_json(saved.get("memory")) or FirstReadMemory.starting(
            read_started, visibility_gap
        )
        return ResumePoint(
            cursor=cursor, delivered=int(saved.get("delivered", 0)), read_started=read_started, memory=memory
        )

    def save(self, value: dict[str, Any]) -> None:
        """Store a progress value (see :func:`progress_value`)."""
        if self._store is not None:
            self._store.set(CHECKPOINT_KEY, value)

    def mark_delivered(self, summary: dict[str, Any]) -> None:
        """Record that the window is delivered, so a retry only reconciles (and reports this summary)."""
        if self._store is not None:
            self._store.set(
                CHECKPOINT_KEY, {"window": self._window.label(), "phase": PHASE_RECONCILE, "summary": summary}
            )

    def clear(self) -> None:
        """Delete the checkpoint: a later clear/rerun re-delivers the whole window."""
        if self._store is not None:
            self._store.delete(CHECKPOINT_KEY)
