"""Whether an Atlassian API error is permanent (retrying cannot help) or retryable (pure)."""

from __future__ import annotations

import pytest

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError


class TestAtlassianApiError:
    @pytest.mark.parametrize(
        ("status", "permanent"),
        [(400, True), (401, True), (403, True), (404, True), (429, False), (503, False), (None, False)],
    )
    def test_permanent_by_status(self, status, permanent):
        assert AtlassianApiError("x", status=status).permanent is permanent

    def test_an_explicit_verdict_wins(self):
        assert AtlassianApiError("looping", status=400, permanent=False).permanent is False
        assert AtlassianApiError("foreign link", permanent=True).permanent is True
