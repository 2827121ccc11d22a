"""How a task fails without retries: for what no retry can fix until someone changes something."""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef]

__all__ = ["AirflowFailException", "is_permanent"]


def is_permanent(err: Exception) -> bool:
    """Whether retrying cannot help: the Atlassian and QRadar error types both say so in ``permanent``."""
    return bool(getattr(err, "permanent", False))
