"""Tests of the frame budget: what is trimmed first, what is never cut, and the truncated= list."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar.leef import CORE_KEYS, escape_value, format_event
from airflow_provider_atlassian_qradar.leef.budget import cut_escaped
from sandbox.leef_parser import parse_leef, unescape_value
from tests.leef.reference import API_EXAMPLE, event_with, reference_attributes


class TestFrameBudget:
    def big_event(self) -> dict[str, Any]:
        event = json.loads(json.dumps(API_EXAMPLE))
        event["unknownTopLevel"] = "u" * 400
        event["message"]["content"] = "m" * 400
        event["attributes"]["container"][0]["attributes"]["siteUrl"] = "s" * 400
        return event

    def test_least_important_values_go_first(self) -> None:
        event = self.big_event()
        full = format_event(event)
        budget = len(full.encode()) - 300
        _, attributes = parse_leef(format_event(event, max_bytes=budget))
        assert attributes["truncated"] == "extra"
        assert 0 < len(attributes["extra"]) < 400
        assert attributes["msg"] == "m" * 400

        _, attributes = parse_leef(format_event(event, max_bytes=len(full.encode()) - 900))
        assert attributes["truncated"] == "extra,container1Attributes,msg"
        assert "extra" not in attributes and "container1Attributes" not in attributes
        assert set(attributes["msg"]) == {"m"}
        assert attributes["eventLink"] == API_EXAMPLE["links"]["self"]

    def test_core_keys_survive_the_smallest_budget(self) -> None:
        line = format_event(self.big_event(), max_bytes=512)
        assert len(line.encode()) <= 512
        _, attributes = parse_leef(line)
        expected = reference_attributes(API_EXAMPLE)
        for key in CORE_KEYS:
            assert attributes[key] == expected[key]
        assert "truncated" in attributes

    def test_ids_and_timestamps_are_dropped_whole_not_cut(self) -> None:
        line = format_event(self.big_event(), max_bytes=512)
        _, attributes = parse_leef(line)
        for key in ("eventTime", "processedAt", "tokenId", "container1Id"):
            assert key not in attributes or attributes[key] == reference_attributes(API_EXAMPLE)[key]

    def test_cut_never_splits_an_escape_or_a_character(self) -> None:
        event = event_with()
        event["message"]["content"] = "\n\\é🙂\u2028" * 200
        for budget in range(700, 1000, 7):
            line = format_event(event, max_bytes=budget)
            assert len(line.encode()) <= budget
            msg = parse_leef(line)[1].get("msg", "")  # unescape raises on a split escape
            assert ("\n\\é🙂\u2028" * 200).startswith(msg)

    def test_oversized_core_is_emitted_anyway(self) -> None:
        event = event_with(action="a" * 255, actor={"id": "i" * 255, "name": "n" * 255, "email": "e" * 250})
        line = format_event(event, max_bytes=512)
        assert len(line.encode()) > 512
        _, attributes = parse_leef(line)
        assert attributes["accountName"] == "n" * 255
        assert "msg" not in attributes
        assert "msg" in attributes["truncated"].split(",")

    def test_truncated_list_is_bounded(self) -> None:
        many = [{"id": f"id-{index}", "type": "sites", "attributes": {"name": "x" * 50}} for index in range(300)]
        line = format_event(event_with(context=many), max_bytes=2048)
        assert len(line.encode()) <= 2048
        listed = parse_leef(line)[1]["truncated"].split(",")
        assert listed[-1].startswith("+")
        assert len(",".join(listed[:-1])) <= 200


class TestCutEscaped:
    @given(raw=st.text(alphabet="ab\\\n\t\x01\u2028é🙂", max_size=40), limit=st.integers(0, 120))
    def test_cut_keeps_whole_escapes_and_characters(self, raw: str, limit: int) -> None:
        escaped = escape_value(raw)
        cut = cut_escaped(escaped, limit)
        assert len(cut.encode()) <= limit
        assert escaped.startswith(cut)
        assert raw.startswith(unescape_value(cut))
