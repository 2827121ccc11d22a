"""The optional raw archive of a window: its events as gzipped JSON Lines at ``<archive_path>/<conn id>/``."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow_provider_atlassian_qradar.windows import Window


class WindowArchive:
    """Write a window's raw events as gzipped JSON Lines to a local file, then publish it to its final path."""

    def __init__(self, archive_path: Any, atlassian_conn_id: str, window: Window) -> None:
        from airflow.sdk import ObjectStoragePath

        base = archive_path if isinstance(archive_path, ObjectStoragePath) else ObjectStoragePath(str(archive_path))
        self.destination = base / atlassian_conn_id / f"{window.label()}.jsonl.gz"
        handle, self._local = tempfile.mkstemp(suffix=".jsonl.gz")
        os.close(handle)
        self._file = gzip.open(self._local, "wt", encoding="utf-8")

    def write(self, events: list[dict[str, Any]]) -> None:
        """Append one page's raw events."""
        for event in events:
            self._file.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            self._file.write("\n")

    def publish(self) -> None:
        """Copy the finished file to its destination (overwriting an earlier run's)."""
        self._file.close()
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        with open(self._local, "rb") as source, self.destination.open("wb") as target:
            shutil.copyfileobj(source, target, length=1 << 20)

    def discard(self) -> None:
        """Delete the local file (after publishing, or after a failed attempt: raw events must not linger)."""
        self._file.close()
        if os.path.exists(self._local):
            os.unlink(self._local)


@contextmanager
def discarding(archive: WindowArchive | None) -> Iterator[None]:
    """Remove the archive's local file whatever happens (publish() copies it first on success)."""
    try:
        yield
    finally:
        if archive is not None:
            archive.discard()
