"""The per-window delivery lock: one run of a window per pair of connections on this host at a time."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_atlassian_qradar.transfers.failures import AirflowFailException
from airflow_provider_atlassian_qradar.windows import Window

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


@contextmanager
def window_lock(atlassian_conn_id: str, qradar_conn_id: str, window: Window) -> Iterator[None]:
    """Hold the delivery lock of one window and pair of connections, or fail at once if another run holds it.

    Two runs of one window at once would each deliver everything, so QRadar would get it twice unnoticed. An
    ``flock`` is released by the kernel whatever happens to the process (even SIGKILL); it guards one Airflow
    installation on one host (:func:`window_lock_dir`), not a run on another host.

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
