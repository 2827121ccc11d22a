"""Reading an event's nested objects: unknown members go to ``extra``; container/context items become keys."""

from __future__ import annotations

from typing import Any

from airflow_provider_atlassian_qradar.leef.schema import EMPTY, LINK_KEYS, OBJECT_FIELDS, OBJECT_KEYS
from airflow_provider_atlassian_qradar.leef.values import value_text


def unusual_object(
    obj: Any, path: str, known: frozenset[str], extra: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """
    Handle a schema object that is not a plain dict of known members (the hot path checks first).

    :return: the object to read known members from (empty if it is not an object) and the updated extra.
    """
    if obj is None:
        return EMPTY, extra
    if extra is None:
        extra = {}
    if not isinstance(obj, dict):
        extra[path] = obj
        return EMPTY, extra
    for name, value in obj.items():
        if name not in known and value is not None:
            extra[f"{path}.{name}" if path else str(name)] = value
    return obj, extra


_OBJECT_KEY_CACHE: dict[tuple[str, int], tuple[str, ...]] = {}


def _object_keys(label: str, index: int) -> tuple[str, ...]:
    """("\\tcontainer1Id=", "\\tcontainer1Type=", ...) for the item at 0-based ``index``."""
    names = tuple(f"\t{label}{index + 1}{field}=" for field in OBJECT_FIELDS)
    if len(_OBJECT_KEY_CACHE) < 1024:
        _OBJECT_KEY_CACHE[label, index] = names
    return names


def object_pairs(
    out: list[Any], items: Any, label: str, path: str, extra: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Append containerN*/contextN* pairs for the items of attributes.container / attributes.context."""
    if items.__class__ is not list:
        if extra is None:
            extra = {}
        extra[path] = items
        return extra
    for index, item in enumerate(items):
        if item.__class__ is not dict:
            if item is not None:
                extra = unusual_object(item, f"{path}[{index}]", OBJECT_KEYS, extra)[1]
            continue
        if not OBJECT_KEYS.issuperset(item):
            extra = unusual_object(item, f"{path}[{index}]", OBJECT_KEYS, extra)[1]
        names = _OBJECT_KEY_CACHE.get((label, index)) or _object_keys(label, index)
        value = item.get("id")
        if value is not None:
            out += (names[0], value)
        value = item.get("type")
        if value is not None:
            out += (names[1], value)
        attributes = item.get("attributes")
        if attributes.__class__ is dict:
            value = attributes.get("name")
            if value is not None:
                out += (names[2], value)
        links = item.get("links")
        if links is not None:
            if links.__class__ is not dict or not LINK_KEYS.issuperset(links):
                links, extra = unusual_object(links, f"{path}[{index}].links", LINK_KEYS, extra)
            value = links.get("self")
            if value is not None:
                out += (names[3], value)
            value = links.get("alt")
            if value is not None:
                out += (names[4], value)
        if attributes is not None and attributes != EMPTY:
            out += (names[5], value_text(attributes))
    return extra
