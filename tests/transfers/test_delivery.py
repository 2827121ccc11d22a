"""The page-delivery loop's pure parts: truncation as the encoder marks it, and which errors are permanent."""

from __future__ import annotations

import pytest

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.leef import MIN_MAX_BYTES, LeefOptions
from airflow_provider_atlassian_qradar.qradar_transport import QRadarDeliveryError
from airflow_provider_atlassian_qradar.transfers.delivery import is_truncated
from airflow_provider_atlassian_qradar.transfers.failures import is_permanent

EVENT = {
    "id": "7bdedaaf-1a46-4631-b78e-9cbcdbcf556a",
    "type": "events",
    "attributes": {
        "time": "2026-01-05T10:15:00.000Z",
        "action": "user_added_to_group",
        "actor": {"id": "actor-1", "name": "Ada", "email": "ada@example.com"},
        "context": [
            {"id": f"group-{index}", "type": "groups", "attributes": {"name": "x" * 80}} for index in range(40)
        ],
    },
    "message": {"content": "Added a user to a group", "format": "simple"},
}


class TestIsTruncated:
    def test_follows_the_encoder_marking_a_line_cut_to_the_budget(self):
        assert not is_truncated(LeefOptions(max_bytes=64 * 1024).format(EVENT))
        assert is_truncated(LeefOptions(max_bytes=MIN_MAX_BYTES).format(EVENT))


class TestIsPermanent:
    @pytest.mark.parametrize(
        ("error", "permanent"),
        [
            (AtlassianApiError("bad request", status=400), True),
            (AtlassianApiError("forbidden", status=403), True),
            (AtlassianApiError("rate limited", status=429), False),
            (AtlassianApiError("server error", status=503), False),
            (AtlassianApiError("network", status=None), False),
            (AtlassianApiError("refused link", status=None, permanent=True), True),
            (QRadarDeliveryError("unreachable"), False),
            (QRadarDeliveryError("certificate rejected", permanent=True), True),
        ],
    )
    def test_both_error_types_say_whether_a_retry_can_help(self, error, permanent):
        assert is_permanent(error) is permanent
