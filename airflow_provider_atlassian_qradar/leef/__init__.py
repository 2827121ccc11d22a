"""
LEEF 2.0 encoding of Atlassian organization audit events (pure Python, no Airflow import).

One call turns one event into one TAB-delimited LEEF 2.0 line. Keys come from a fixed schema
(docs/leef-mapping.md), never from event data; values are escaped so that no event can forge a line, a key or
a header field; the line always fits ``max_bytes`` by trimming the least important values first.
"""

from __future__ import annotations

from airflow_provider_atlassian_qradar.leef.budget import TRUNCATED_LIST_MAX_BYTES
from airflow_provider_atlassian_qradar.leef.categories import (
    ACTION_CATEGORIES,
    DEFAULT_SEVERITY,
    FALLBACK_CATEGORY,
    FALLBACK_SEVERITY,
)
from airflow_provider_atlassian_qradar.leef.encoder import format_event
from airflow_provider_atlassian_qradar.leef.escaping import escape_value
from airflow_provider_atlassian_qradar.leef.header import sanitize_event_id
from airflow_provider_atlassian_qradar.leef.options import LeefOptions
from airflow_provider_atlassian_qradar.leef.schema import (
    CORE_KEYS,
    CORE_VALUE_MAX_BYTES,
    DYNAMIC_KEY_PATTERN,
    EVENT_ID_MAX_CHARS,
    LEEF_PRODUCT,
    LEEF_VENDOR,
    MIN_MAX_BYTES,
    SCHEMA_KEYS,
    is_schema_key,
)

__all__ = [
    "ACTION_CATEGORIES",
    "CORE_KEYS",
    "CORE_VALUE_MAX_BYTES",
    "DEFAULT_SEVERITY",
    "DYNAMIC_KEY_PATTERN",
    "EVENT_ID_MAX_CHARS",
    "FALLBACK_CATEGORY",
    "FALLBACK_SEVERITY",
    "LEEF_PRODUCT",
    "LEEF_VENDOR",
    "MIN_MAX_BYTES",
    "SCHEMA_KEYS",
    "TRUNCATED_LIST_MAX_BYTES",
    "LeefOptions",
    "escape_value",
    "format_event",
    "is_schema_key",
    "sanitize_event_id",
]
