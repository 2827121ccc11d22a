"""Which errors are permanent (the one rule the operator turns into AirflowFailException)."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_atlassian_qradar.atlassian_api import AtlassianApiError
from airflow_provider_atlassian_qradar.leef import MIN_MAX_BYTES, LeefOptions
from airflow_provider_atlassian_qradar.qradar_transport import QRadarDeliveryError
from airflow_provider_atlassian_qradar.transfers.delivery import Batch, Sent, send_batches
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


class RecordingSender:
    """Takes records and confirms every receipt: what send_batches needs of a QRadar sender."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def send(self, records):
        self.lines.extend(line for line, _time_ms in records)
        return len(records)

    def request_receipt(self) -> None:
        pass

    def confirm(self) -> bool:
        return True


class TestSendBatches:
    @pytest.mark.parametrize(("max_bytes", "truncated"), [(64 * 1024, 0), (MIN_MAX_BYTES, 3)])
    def test_counts_the_events_the_encoder_cut_to_the_budget(self, max_bytes, truncated):
        sender, safe = RecordingSender(), []
        batches = [Batch(events=[EVENT, EVENT], times_ms=[None, None], token="p1"), Batch([EVENT], [None], "p2")]
        result = send_batches(batches, sender, LeefOptions(max_bytes=max_bytes), safe.append, logging.getLogger(), 0.0)
        assert result == Sent(events=3, truncated=truncated)
        assert sum("\ttruncated=" in line for line in sender.lines) == truncated
        assert safe == ["p1", "p2"]
