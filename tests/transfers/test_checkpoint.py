"""The task checkpoint: what an earlier attempt left, and where the next first read starts."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_atlassian_qradar.reconcile import FirstReadMemory
from airflow_provider_atlassian_qradar.transfers.checkpoint import CHECKPOINT_KEY, TaskCheckpoint, progress_value
from airflow_provider_atlassian_qradar.windows import Window

HOUR = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
WINDOW = Window(HOUR, HOUR + timedelta(hours=1))
READ_STARTED = HOUR + timedelta(hours=1, minutes=15)
LOG = logging.getLogger(__name__)


class DictStore:
    """Airflow's task state store (get/set/delete) for one task."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def loaded(value: dict[str, Any] | None) -> TaskCheckpoint:
    store = DictStore({CHECKPOINT_KEY: value} if value is not None else None)
    return TaskCheckpoint.load({"task_state_store": store}, WINDOW, LOG)


class TestResumePoint:
    def test_a_first_attempt_starts_at_the_window_start(self):
        resume = loaded(None).resume_point(rereading=False, visibility_gap=timedelta(minutes=5))
        assert (resume.cursor, resume.delivered, resume.fetched_before, resume.skip_sending) == (None, 0, 0, 0)
        assert resume.memory.cutoff_ms == FirstReadMemory.starting(resume.read_started).cutoff_ms

    def test_with_a_cursor_the_delivered_events_are_not_fetched_again(self):
        saved = progress_value(WINDOW, "cursor-3", 600, READ_STARTED, None)
        resume = loaded(saved).resume_point(rereading=False, visibility_gap=timedelta(minutes=5))
        assert (resume.cursor, resume.delivered, resume.fetched_before, resume.skip_sending) == (
            "cursor-3",
            600,
            600,
            0,
        )
        assert resume.read_started == READ_STARTED

    def test_rereading_fetches_everything_and_skips_sending_what_was_delivered(self):
        saved = progress_value(WINDOW, "cursor-3", 600, READ_STARTED, None)
        resume = loaded(saved).resume_point(rereading=True, visibility_gap=timedelta(minutes=5))
        assert (resume.cursor, resume.fetched_before, resume.skip_sending) == (None, 0, 600)

    def test_the_saved_memory_is_kept(self):
        memory = FirstReadMemory.starting(READ_STARTED)
        memory.note(["event-1"], [memory.cutoff_ms])
        saved = progress_value(WINDOW, None, 1, READ_STARTED, memory)
        resume = loaded(saved).resume_point(rereading=False, visibility_gap=timedelta(minutes=5))
        assert resume.memory.to_json() == memory.to_json()


class TestTaskCheckpoint:
    def test_a_checkpoint_of_another_window_is_ignored(self):
        other = Window(WINDOW.end, WINDOW.end + timedelta(hours=1))
        assert loaded(progress_value(other, "c", 5, READ_STARTED, None)).saved is None

    def test_the_phase_marker_keeps_the_summary_until_cleared(self):
        store = DictStore()
        checkpoint = TaskCheckpoint.load({"task_state_store": store}, WINDOW, LOG)
        checkpoint.mark_delivered({"sent": 7})
        again = TaskCheckpoint.load({"task_state_store": store}, WINDOW, LOG)
        assert again.delivered_summary() == {"sent": 7}
        again.clear()
        assert CHECKPOINT_KEY not in store.values

    def test_progress_is_not_a_delivered_window(self):
        assert loaded(progress_value(WINDOW, None, 5, READ_STARTED, None)).delivered_summary() is None

    def test_without_a_store_it_warns_and_does_nothing(self, caplog):
        checkpoint = TaskCheckpoint.load({}, WINDOW, LOG)
        checkpoint.save(progress_value(WINDOW, None, 5, READ_STARTED, None))
        checkpoint.mark_delivered({"sent": 5})
        checkpoint.clear()
        assert checkpoint.saved is None
        assert "no task state store" in caplog.text
