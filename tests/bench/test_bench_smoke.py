"""Smoke run of the benchmark suite at tiny sizes, so the bench modules keep working.

No timing is asserted here (speed is measured by ``make bench``): only counts, shapes and the report's table.
The scheduler backfill is left to ``make bench`` and the Airflow e2e tests: starting Airflow takes a minute.
"""

from __future__ import annotations

import json
import math

import pytest

from airflow_provider_atlassian_qradar.dag_factory import DEFAULT_API_SLOTS
from bench import __main__ as bench_main
from bench import api_efficiency, pipeline
from sandbox.receivers import require_syslog_ng


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    require_syslog_ng()
    output = tmp_path_factory.mktemp("bench")
    status = bench_main.main(
        ["--quick", "--only", "encoder,sender,pipeline,api_efficiency,reconcile", "--output", str(output)]
    )
    return status, json.loads((output / "BENCHMARKS.json").read_text()), (output / "BENCHMARKS.md").read_text()


class TestQuickRun:
    def test_every_selected_measure_ran_without_error(self, quick_report):
        status, results, _ = quick_report
        assert status == 0
        assert set(results["measures"]) == {"encoder", "sender", "pipeline", "api_efficiency", "reconcile"}
        assert not [name for name, result in results["measures"].items() if "error" in result]

    def test_encoder_and_sender_counted_every_event(self, quick_report):
        _, results, _ = quick_report
        encoder, sender = results["measures"]["encoder"], results["measures"]["sender"]
        assert encoder["events"] == 2000 and encoder["source"] == "sandbox.atlassian_sim"
        # Each receiver got loggen's messages and ours: nothing lost on either transport.
        assert sender["tcp_lines_received"] == sender["tls_lines_received"] == 2 * sender["events"]

    def test_pipeline_delivered_each_window_through_prebuilt_pages(self, quick_report):
        _, results, _ = quick_report
        sizes = results["measures"]["pipeline"]["sizes"]
        assert set(sizes) == {"1000", "3000"}
        for size, row in sizes.items():
            assert row["page_server"]["events"] == int(size)
            assert row["page_server"]["pages"] == math.ceil(int(size) / pipeline.PAGE_SIZE) + 1
            assert row["fetch_requests"] == row["page_server"]["pages"]
            assert row["requests"] == row["fetch_requests"] + 1  # the operator also reads /event-actions
        shares = results["measures"]["pipeline"]["profile"]["pipeline"]["cumulative_share"]
        # Every hot path named in the report was found in the profile (a renamed function would read 0%).
        assert all(share > 0 for share in shares.values()), shares

    def test_api_efficiency_counts_requests_of_both_clients(self, quick_report):
        _, results, _ = quick_report
        api = results["measures"]["api_efficiency"]
        by_size = {row["events"]: row for row in api["requests_per_window"]}
        assert {size: row["ours_requests"] for size, row in by_size.items()} == {0: 1, 100: 1, 1000: 6}
        assert {size: row["connector_requests"] for size, row in by_size.items()} == {0: 1, 100: 2, 1000: 11}
        concurrency = api["default_concurrency"]
        assert concurrency["windows"] == DEFAULT_API_SLOTS and concurrency["events_read"] == DEFAULT_API_SLOTS * 500

    def test_report_has_a_table_row_per_figure(self, quick_report):
        _, _, markdown = quick_report
        assert "| measure | ours | anchor (same run) | ratio | target | met |" in markdown
        for label in ("1. Encoder", "2. Sender TCP", "2. Sender TLS", "3. Window of 3,000", "3. Peak RSS", "4. 429s"):
            assert label in markdown
        assert "## Machine" in markdown and "## Method" in markdown
        assert "**Before / after**" in markdown  # measure 3 against the recorded earlier runs


class TestConnectorReplay:
    def test_the_connector_aborts_at_the_first_429(self):
        result = api_efficiency.connector_under_rate_limit(60 * api_efficiency.CONNECTOR_EVENTS_PER_FETCH)
        # 50 calls pass the 50/min limit, the 51st is refused and the workflow gives up (no retry).
        assert result["aborted_on"] == 429 and result["rate_limited"] == 1
        assert result["events"] == api_efficiency.STREAM_LIMIT_PER_MINUTE * api_efficiency.CONNECTOR_EVENTS_PER_FETCH


class TestReconcileMeasure:
    def test_second_reads_deliver_exactly_once_and_cost_nothing_under_processed(self, quick_report):
        _, results, markdown = quick_report
        reconcile = results["measures"]["reconcile"]
        assert reconcile["all_exactly_once"]
        assert reconcile["max_second_read_requests"]["processed"] == 0
        assert {row["clock"] for row in reconcile["rows"]} == {"time", "processed"}
        assert any(row["late_found"] > 0 for row in reconcile["rows"] if row["clock"] == "time")
        assert "6. Second read (late events)" in markdown
