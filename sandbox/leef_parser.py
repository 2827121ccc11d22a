"""A LEEF 2.0 parser for tests and the demo's checks: split a line the way QRadar does and unescape its values."""

from __future__ import annotations

import re

_UNESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|([\\nrt]))?")
_UNESCAPE_SIMPLE = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def _unescape_match(match: re.Match[str]) -> str:
    hex2, hex4, simple = match.groups()
    if simple is not None:
        return _UNESCAPE_SIMPLE[simple]
    if hex2 is not None:
        return chr(int(hex2, 16))
    if hex4 is not None:
        return chr(int(hex4, 16))
    raise ValueError(
        f"invalid LEEF value escape at offset {match.start()} of {match.string!r}: "
        "a backslash must start \\\\, \\n, \\r, \\t, \\xHH or \\uXXXX (lowercase hex)"
    )


def unescape_value(value: str) -> str:
    """
    Reverse ``airflow_provider_atlassian_qradar.leef.escape_value``.

    :param value: an escaped value as found in a LEEF line.
    :return: the original value.
    :raises ValueError: if the value holds a backslash that does not start a valid escape.
    """
    if "\\" not in value:
        return value
    return _UNESCAPE_RE.sub(_unescape_match, value)


def _delimiter(field: str) -> str:
    lowered = field.lower()
    for prefix in ("0x", "x"):
        if lowered.startswith(prefix) and 1 <= len(lowered) - len(prefix) <= 4:
            try:
                return chr(int(lowered[len(prefix) :], 16))
            except ValueError:
                break
    if len(field) == 1:
        return field
    raise ValueError(f"LEEF 2.0 delimiter field {field!r} is neither one character nor a hex value like x09")


def parse_leef(line: str) -> tuple[list[str], dict[str, str]]:
    """
    Split a LEEF 2.0 line the way QRadar does and unescape the values (for tests and receivers' checks).

    The first six ``|``-separated fields are the header; the rest is split on the declared delimiter, and
    each attribute at its first ``=``.

    :param line: one LEEF 2.0 line without syslog header or line terminator.
    :return: (header fields ``["LEEF:2.0", vendor, product, version, EventID, delimiter]``, key -> value).
    :raises ValueError: on a malformed header, an attribute without ``=``, a duplicate key or a bad escape.
    """
    fields = line.split("|", 6)
    if len(fields) != 7 or fields[0] != "LEEF:2.0":
        raise ValueError(f"not a LEEF 2.0 line (expected 'LEEF:2.0|' and 6 header fields): {line[:120]!r}")
    header, body = fields[:6], fields[6]
    attributes: dict[str, str] = {}
    if not body:
        return header, attributes
    for pair in body.split(_delimiter(header[5])):
        key, separator, value = pair.partition("=")
        if not separator:
            raise ValueError(f"LEEF attribute {pair[:80]!r} has no '='")
        if key in attributes:
            raise ValueError(f"LEEF key {key!r} appears twice; QRadar may ignore one of the values")
        attributes[key] = unescape_value(value)
    return header, attributes
