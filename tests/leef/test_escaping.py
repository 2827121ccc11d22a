"""Tests of value escaping: the escape table, and that any text escapes to one valid UTF-8 value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar.leef import escape_value
from sandbox.leef_parser import unescape_value
from tests.leef.reference import clean


class TestEscaping:
    @pytest.mark.parametrize(
        ("raw", "escaped"),
        [
            ("plain = | ^ text", "plain = | ^ text"),
            ("a\\b", "a\\\\b"),
            ("l1\nl2\rl3\tl4", "l1\\nl2\\rl3\\tl4"),
            ("\x00\x01\x1b\x1f\x7f", "\\x00\\x01\\x1b\\x1f\\x7f"),
            ("\x85\u2028\u2029", "\\u0085\\u2028\\u2029"),
            ("\ufeffbom", "\ufeffbom"),
            ("\ud800x\udfff", "\ufffdx\ufffd"),
            ("é漢🙂\xa0", "é漢🙂\xa0"),
        ],
    )
    def test_escape_table(self, raw: str, escaped: str) -> None:
        assert escape_value(raw) == escaped
        escaped.encode("utf-8", errors="strict")

    @given(st.text())
    def test_unescape_reverses_escape(self, raw: str) -> None:
        escaped = escape_value(raw)
        assert "\t" not in escaped and "\n" not in escaped
        assert unescape_value(escaped) == raw

    @given(st.text(alphabet=st.characters(exclude_categories=())))
    def test_any_text_escapes_to_valid_utf8(self, raw: str) -> None:
        escaped = escape_value(raw)
        escaped.encode("utf-8", errors="strict")
        assert unescape_value(escaped) == clean(raw)
