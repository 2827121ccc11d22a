"""The text of a non-string value (true/false, numbers, compact JSON) before it is escaped."""

from __future__ import annotations

import json
from typing import Any


def _make_json_encoder() -> Any:
    """Return a callable obj -> compact sorted JSON, reusing one C encoder (json.dumps builds one per call)."""
    from json import encoder as json_encoder

    c_make_encoder = getattr(json_encoder, "c_make_encoder", None)
    c_encode_basestring = getattr(json_encoder, "c_encode_basestring", None)
    if c_make_encoder is None or c_encode_basestring is None:  # pragma: no cover - non-CPython
        return json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
    # markers=None skips the circular-reference check: decoded JSON cannot be circular.
    c_encoder = c_make_encoder(None, None, c_encode_basestring, None, ":", ",", True, False, True)

    def encode(obj: Any) -> str:
        return "".join(c_encoder(obj, 0))

    return encode


_json_compact = _make_json_encoder()
_json_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr).encode


def to_json(obj: Any) -> str:
    """Compact JSON with sorted keys and non-ASCII kept; odd objects (non-str keys, sets) degrade to repr."""
    try:
        rendered: str = _json_compact(obj)
    except (TypeError, ValueError):  # non-str keys that cannot be sorted, sets, other odd objects
        rendered = _json_fallback(obj)
    return rendered


def value_text(value: Any) -> str:
    """Text of a non-None value before escaping: bool true/false, numbers str(), dict/list compact JSON."""
    if value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return to_json(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
