"""Read the Atlassian organization audit log (pure: no Airflow import).

``errors`` (what went wrong), ``pacing`` (request spacing, retry waits), ``guard`` (deadline, capped body,
secret scrubbing, origins), ``validation`` (org id, key, base URL), ``filters``, ``paging`` (the window walk)
and ``client`` (one paced, retried GET and the endpoints). The Airflow hook builds the client from a connection.
"""

from __future__ import annotations

from airflow_provider_atlassian_qradar.atlassian_api.client import ApiSettings, AtlassianClient
from airflow_provider_atlassian_qradar.atlassian_api.errors import AtlassianApiError
from airflow_provider_atlassian_qradar.atlassian_api.filters import EventFilters, FilterArguments
from airflow_provider_atlassian_qradar.atlassian_api.pacing import DEFAULT_REQUESTS_PER_MINUTE, EVENTS, STREAM
from airflow_provider_atlassian_qradar.atlassian_api.paging import FetchStats, Page

__all__ = [
    "DEFAULT_REQUESTS_PER_MINUTE",
    "EVENTS",
    "STREAM",
    "ApiSettings",
    "AtlassianApiError",
    "AtlassianClient",
    "EventFilters",
    "FetchStats",
    "FilterArguments",
    "Page",
]
