"""First-read memories, one per window and delivering task, in the organization's asset state store."""

from __future__ import annotations

from typing import Any

from airflow_provider_atlassian_qradar.reconcile import FirstReadMemory
from airflow_provider_atlassian_qradar.transfers.assets import asset_state
from airflow_provider_atlassian_qradar.windows import Window

#: Key prefix of the first-read memories in the organization's asset state store (one per window).
RECONCILE_KEY_PREFIX = "first_read/"


class ReconcileStore:
    """First-read memories, one per window, in the organization's asset state store (Airflow 3.3+).

    The asset stands for one organization and is shared by every DAG reading it, so a memory is keyed by the
    delivering task (``dag_id.task_id``) as well as the window: two DAGs delivering one organization to two
    destinations each reconcile their own first reads. Memories are deleted once reconciled.
    """

    def __init__(self, accessor: Any, reader: str) -> None:
        self._accessor = accessor
        self._reader = reader

    @classmethod
    def open(cls, context: Any, atlassian_conn_id: str, reader: str, log: Any) -> ReconcileStore | None:
        """The store of this task's organization, or None (with a warning) on an Airflow without one."""
        accessor = asset_state(context, atlassian_conn_id)
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
