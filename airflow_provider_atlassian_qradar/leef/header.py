"""The LEEF header: ``LEEF:2.0|vendor|product|version|EventID|x09|``, with the EventID taken from the action."""

from __future__ import annotations

import re
from functools import lru_cache

from airflow_provider_atlassian_qradar.leef.schema import DELIMITER_FIELD, EVENT_ID_MAX_CHARS, LEEF_PRODUCT, LEEF_VENDOR

_EVENT_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_PRODUCT_VERSION_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}\Z")
#: action -> EventID, read directly by the encoder's hot path before it calls :func:`cached_event_id`.
event_id_cache: dict[str, str] = {}
HEADER_END = "|" + DELIMITER_FIELD + "|"


def sanitize_event_id(action: str) -> str:
    """
    Turn an action id into a LEEF EventID: chars outside ``[A-Za-z0-9._-]`` -> ``_``, at most 255 chars.

    :param action: the raw ``attributes.action``.
    :return: the EventID, ``unknown`` for an empty action.
    """
    event_id = _EVENT_ID_BAD_CHARS.sub("_", action[: EVENT_ID_MAX_CHARS * 2])[:EVENT_ID_MAX_CHARS]
    return event_id or "unknown"


def cached_event_id(action: str) -> str:
    """Return the EventID of ``action``, cached."""
    sanitized = event_id_cache.get(action)
    if sanitized is None:
        sanitized = sanitize_event_id(action)
        # Action ids are a small closed set; the bound only guards against hostile input.
        if len(event_id_cache) >= 4096:
            event_id_cache.clear()
        event_id_cache[action] = sanitized
    return sanitized


@lru_cache(maxsize=16)
def header_prefix(product_version: str) -> str:
    """Return ``LEEF:2.0|vendor|product|version|``; ValueError if the version cannot go into a header field."""
    if not _PRODUCT_VERSION_RE.match(product_version):
        raise ValueError(
            f"product_version {product_version!r} cannot go into the LEEF header: use 1-64 characters "
            "from [A-Za-z0-9._+-] (IBM defines no escaping for header fields)"
        )
    return f"LEEF:2.0|{LEEF_VENDOR}|{LEEF_PRODUCT}|{product_version}|"
