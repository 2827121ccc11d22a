"""The five search filters as one value (pure)."""

from __future__ import annotations

from airflow_provider_atlassian_qradar.atlassian_api.filters import EventFilters


class TestEventFilters:
    def test_no_filter_is_false_and_sends_nothing(self):
        filters = EventFilters.of(query="", action=None, actor=[], ip=None, product=[""])
        assert not filters
        assert filters.params() == []

    def test_a_single_string_is_one_value_and_order_is_stable(self):
        filters = EventFilters.of(
            query="login", action="user_login", actor="acc-1", ip=["10.0.0.1", ""], product="jira"
        )
        assert filters
        assert filters.params() == [
            ("q", "login"),
            ("action", "user_login"),
            ("actor", "acc-1"),
            ("ip", "10.0.0.1"),
            ("product", "jira"),
        ]
