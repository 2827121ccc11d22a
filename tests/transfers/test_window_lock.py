"""The per-window delivery lock: a real flock under a temporary lock directory."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_atlassian_qradar.transfers.failures import AirflowFailException
from airflow_provider_atlassian_qradar.transfers.window_lock import WINDOW_LOCK_DIR_ENV, window_lock, window_lock_dir
from airflow_provider_atlassian_qradar.windows import Window

HOUR = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
WINDOW = Window(HOUR, HOUR + timedelta(hours=1))


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(WINDOW_LOCK_DIR_ENV, str(tmp_path / "locks"))
    return tmp_path / "locks"


class TestWindowLock:
    def test_a_second_run_of_the_same_window_fails_at_once_naming_the_holder(self, lock_dir):
        with window_lock("atlassian", "qradar", WINDOW):
            with pytest.raises(
                AirflowFailException, match=rf"window {re.escape(str(WINDOW))}.*process {os.getpid()} on this host"
            ):
                with window_lock("atlassian", "qradar", WINDOW):
                    pass

    def test_other_windows_and_other_destinations_do_not_wait(self, lock_dir):
        with window_lock("atlassian", "qradar", WINDOW):
            with window_lock("atlassian", "qradar", Window(WINDOW.end, WINDOW.end + timedelta(hours=1))):
                pass
            with window_lock("atlassian", "qradar-2", WINDOW):
                pass

    def test_the_lock_is_released_after_the_run(self, lock_dir):
        with window_lock("atlassian", "qradar", WINDOW):
            pass
        with window_lock("atlassian", "qradar", WINDOW):
            pass
        assert [path.suffix for path in lock_dir.iterdir()] == [".lock"]

    def test_the_directory_defaults_to_airflow_home(self, tmp_path, monkeypatch):
        monkeypatch.delenv(WINDOW_LOCK_DIR_ENV, raising=False)
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
        assert window_lock_dir() == os.path.join(str(tmp_path), "locks", "atlassian-qradar")
        monkeypatch.setenv(WINDOW_LOCK_DIR_ENV, " /var/lock/aq ")
        assert window_lock_dir() == "/var/lock/aq"
