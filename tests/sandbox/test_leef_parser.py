"""Tests of the LEEF parser used by tests and the demo (sandbox/leef_parser.py)."""

from __future__ import annotations

import pytest

from sandbox.leef_parser import parse_leef, unescape_value


class TestParseLeef:
    def test_splits_header_and_first_equals(self) -> None:
        header, attributes = parse_leef("LEEF:2.0|V|P|1|E|x09|a=b=c\tk=v|w")
        assert header == ["LEEF:2.0", "V", "P", "1", "E", "x09"]
        assert attributes == {"a": "b=c", "k": "v|w"}

    def test_other_delimiters(self) -> None:
        assert parse_leef("LEEF:2.0|V|P|1|E|^|a=1^b=2")[1] == {"a": "1", "b": "2"}
        assert parse_leef("LEEF:2.0|V|P|1|E|0x5E|a=1^b=2")[1] == {"a": "1", "b": "2"}

    @pytest.mark.parametrize(
        "line",
        ["LEEF:1.0|V|P|1|E|a=b", "LEEF:2.0|V|P|1|E|x09|a=1\ta=2", "LEEF:2.0|V|P|1|E|x09|novalue", "garbage"],
    )
    def test_rejects_malformed_lines(self, line: str) -> None:
        with pytest.raises(ValueError):
            parse_leef(line)


class TestUnescapeValue:
    @pytest.mark.parametrize("bad", ["\\", "a\\q", "\\x4", "\\X41", "\\u12g4", "\\xAB"])
    def test_invalid_escape_is_rejected(self, bad: str) -> None:
        with pytest.raises(ValueError, match="escape"):
            unescape_value(bad)
