"""Escaping of attribute values, so that no event can end the line, forge a key or break UTF-8."""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_atlassian_qradar.leef.values import value_text

_ESCAPES: dict[str, str] = {chr(code): f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}
_ESCAPES.update({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_ESCAPES.update({char: f"\\u{ord(char):04x}" for char in ("\x85", "\u2028", "\u2029")})
_ESCAPE_RE = re.compile("[\\x00-\\x1f\\x7f\\\\\\x85\\u2028\\u2029\\ud800-\\udfff]")
_REPLACEMENT_CHAR = "\ufffd"


def _escape_match(match: re.Match[str]) -> str:
    char = match.group()
    # Only lone surrogates are not in the table: they cannot be encoded as UTF-8.
    return _ESCAPES.get(char, _REPLACEMENT_CHAR)


def escape_value(value: str) -> str:
    """
    Escape one attribute value so that it cannot end the line, start a new attribute or break UTF-8.

    ``\\`` -> ``\\\\``, LF/CR/TAB -> ``\\n``/``\\r``/``\\t``, other C0 controls and DEL -> ``\\xHH``,
    U+0085/U+2028/U+2029 -> ``\\uXXXX``, lone surrogates -> U+FFFD. ``=`` and ``|`` stay literal.

    :param value: the raw value.
    :return: the escaped value; ``sandbox.leef_parser.unescape_value`` reverses it (except the U+FFFD replacement).
    """
    # isprintable() is False for every character that needs escaping (Cc, Zl, Zp, Cs) except "\\".
    if value.isprintable() and "\\" not in value:
        return value
    return _ESCAPE_RE.sub(_escape_match, value)


def render(value: Any) -> str:
    """Text of a non-None value, escaped (escape_value inlined: the encoder calls this for long core values)."""
    if value.__class__ is not str:
        value = value_text(value)
    if value.isprintable() and "\\" not in value:
        return value
    return _ESCAPE_RE.sub(_escape_match, value)


def utf8_len(text: str) -> int:
    """Return the UTF-8 length of ``text`` in bytes (without encoding it when it is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))
