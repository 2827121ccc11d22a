"""The window a task is asked to deliver: its templated bounds read, and checked before any request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowException

from airflow_provider_atlassian_qradar.transfers.failures import AirflowFailException
from airflow_provider_atlassian_qradar.windows import Window


def parse_bound(value: Any, name: str) -> datetime:
    """Read one window bound (a datetime or an ISO 8601 string with an offset)."""
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


def checked_window(window_start: Any, window_end: Any, max_window: timedelta) -> Window:
    """The window ``[window_start, window_end)``, refused when longer than ``max_window`` or not yet ended."""
    window = Window(parse_bound(window_start, "window_start"), parse_bound(window_end, "window_end"))
    if window.end - window.start > max_window:
        raise AirflowFailException(
            f"window {window} is longer than max_window={max_window}: split it (the DAG's hourly "
            "intervals do) or raise max_window on the operator"
        )
    now = datetime.now(timezone.utc)
    if window.end > now + timedelta(minutes=1):
        raise AirflowException(
            f"window {window} ends in the future (now is {now.isoformat()}): events there do not exist yet; "
            "pass a window that has ended"
        )
    return window
