"""AtlassianAuditLogToQRadarOperator run in-process against the simulator and a real syslog-ng.

These call ``execute`` with a minimal context (a dict-backed task state store), which is enough for input
validation, deferral, streaming, checkpoints and resume. Real-Airflow runs are in tests/integration/.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar import AtlassianAuditLogToQRadarOperator
from airflow_provider_atlassian_qradar.transfers.checkpoint import CHECKPOINT_KEY
from sandbox.atlassian_sim import SimulatorConfig, run_in_thread
from sandbox.connections import ATLASSIAN_CONN_VAR, QRADAR_CONN_VAR, atlassian_connection, qradar_connection
from sandbox.leef_parser import parse_leef
from sandbox.receivers import SyslogNg, generate_certs, require_syslog_ng
from sandbox.state_store import DictStore

API_KEY = "operator-test-key-NEVER-LOGGED"
ORG = "org-op"
HOUR = (datetime.now(timezone.utc) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def received_ids(lines: list[str]) -> Counter[str]:
    ids: Counter[str] = Counter()
    for line in lines:
        _header, attributes = parse_leef(line[line.index("LEEF:") :])
        ids[attributes["eventId"]] += 1
    return ids


def use_simulator(monkeypatch: pytest.MonkeyPatch, sim: Any) -> None:
    """Point the default Atlassian connection at a running simulator (no client-side pacing, 200-event pages)."""
    conn = atlassian_connection(sim.base_url, ORG, API_KEY, stream_requests_per_minute=0, page_size=200)
    monkeypatch.setenv(ATLASSIAN_CONN_VAR, conn)


@pytest.fixture
def simulator(monkeypatch, filter_clock):
    config = SimulatorConfig(
        filter_clock=filter_clock,
        org_id=ORG,
        api_key=API_KEY,
        start=HOUR - timedelta(hours=2),
        end=HOUR + timedelta(hours=2),
        events_per_hour=900,
        seed=5,
        hostile_ratio=0.05,
        stream_requests_per_minute=0,
    )
    with run_in_thread(config) as sim:
        use_simulator(monkeypatch, sim)
        yield sim


def operator(**kwargs: Any) -> AtlassianAuditLogToQRadarOperator:
    kwargs.setdefault("window_start", HOUR.isoformat())
    kwargs.setdefault("window_end", (HOUR + timedelta(hours=1)).isoformat())
    return AtlassianAuditLogToQRadarOperator(task_id="deliver", **kwargs)


class TestAtlassianAuditLogToQRadarOperatorValidation:
    @pytest.mark.parametrize(
        ("start", "end", "message"),
        [
            (HOUR, HOUR, "is not after its start"),
            (HOUR, HOUR - timedelta(hours=1), "is not after its start"),
            (HOUR, HOUR + timedelta(days=2), "longer than max_window"),
            (datetime.now(timezone.utc), datetime.now(timezone.utc) + timedelta(hours=2), "ends in the future"),
            ("yesterday-ish", HOUR, "is not an ISO 8601 date-time"),
            ("None", HOUR, "is not an ISO 8601 date-time"),  # a manual run without a logical date renders this
        ],
    )
    def test_bad_windows_fail_before_any_request(self, simulator, syslog_ng, start, end, message):
        start_text = start.isoformat() if isinstance(start, datetime) else start
        with pytest.raises((AirflowException, ValueError), match=message):
            operator(window_start=start_text, window_end=end.isoformat()).execute({})
        assert simulator.requests == []

    @pytest.mark.parametrize("bound", ["None", "", "yesterday-ish"])
    def test_an_unreadable_window_bound_fails_without_retries(self, simulator, syslog_ng, bound):
        with pytest.raises(AirflowFailException, match="window_start"):
            operator(window_start=bound).execute({})
        assert simulator.requests == []

    def test_unknown_protocol_fails_before_any_request(self, simulator, monkeypatch):
        monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(1, "carrier-pigeon"))
        with pytest.raises(AirflowFailException, match="carrier-pigeon"):
            operator().execute({})
        assert simulator.requests == []

    @pytest.mark.parametrize(
        ("conn_id", "change", "message"),
        [
            ("QRADAR_DEFAULT", {"extra": {"connect_timeout": "soon"}}, "extra connect_timeout .* is not a number"),
            ("QRADAR_DEFAULT", {"extra": {"protocol": "tls", "ca_cert": "/nonexistent/ca.pem"}}, "ca_cert"),
            ("ATLASSIAN_ADMIN_DEFAULT", {"login": None}, "has no Organization ID"),
            ("ATLASSIAN_ADMIN_DEFAULT", {"password": None}, "has no API key"),
            ("ATLASSIAN_ADMIN_DEFAULT", {"extra": {"page_size": "lots"}}, "extra page_size .* is not a whole number"),
        ],
    )
    def test_configuration_errors_fail_the_task_without_retries(
        self, simulator, syslog_ng, monkeypatch, conn_id, change, message
    ):
        """A ValueError would be retried for many minutes; AirflowFailException ends the task at once."""
        conn = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id}"]) | change
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(conn))
        with pytest.raises(AirflowFailException, match=message) as info:
            operator().execute({})
        assert API_KEY not in str(info.value)
        assert simulator.requests == []

    def test_ui_made_connections_with_null_extras_deliver(self, simulator, syslog_ng, monkeypatch):
        """Every form field left empty is saved as null by the Airflow UI: the window must still be delivered."""
        from airflow_provider_atlassian_qradar.get_provider_info import get_provider_info

        forms = {e["connection-type"]: e["conn-fields"] for e in get_provider_info()["connection-types"]}
        for conn_id, conn_type, keep in (
            ("QRADAR_DEFAULT", "qradar", {}),
            ("ATLASSIAN_ADMIN_DEFAULT", "atlassian_admin", {"stream_requests_per_minute": 0}),
        ):
            conn = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id}"])
            conn["extra"] = dict.fromkeys(forms[conn_type]) | keep
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(conn))
        summary = operator().execute({})
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert summary["sent"] == len(truth) > 0
        assert received_ids(syslog_ng.wait_for_lines(len(truth))) == Counter(truth)

    def test_window_beyond_retention_delivers_nothing_and_succeeds(self, simulator, syslog_ng):
        old = (datetime.now(timezone.utc) - timedelta(days=200)).replace(minute=0, second=0, microsecond=0)
        summary = operator(window_start=old.isoformat(), window_end=(old + timedelta(hours=1)).isoformat()).execute({})
        assert summary["sent"] == 0 and summary["note"] == "retention"
        assert simulator.requests == []

    def test_recent_window_defers_until_settled(self, simulator, syslog_ng):
        end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
        task = operator(window_start=(end - timedelta(hours=1)).isoformat(), window_end=end.isoformat())
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        assert deferred.value.method_name == "execute_complete"
        _classpath, kwargs = deferred.value.trigger.serialize()
        assert kwargs["moment"] == end + timedelta(minutes=15)
        assert simulator.requests == []

    def test_templated_fields(self):
        fields = set(AtlassianAuditLogToQRadarOperator.template_fields)
        assert {"window_start", "window_end", "query", "action", "actor", "ip", "product", "archive_path"} <= fields
        assert AtlassianAuditLogToQRadarOperator(task_id="t").window_start == "{{ data_interval_start }}"


class TestAtlassianAuditLogToQRadarOperatorDelivery:
    def test_delivers_the_window_exactly_once(self, simulator, syslog_ng):
        store = DictStore()
        summary = operator().execute({"task_state_store": store})
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        got = received_ids(syslog_ng.wait_for_lines(len(truth)))
        assert set(got) == set(truth) and max(got.values()) == 1
        assert summary["fetched"] == summary["sent"] == len(truth) > 850
        assert summary["api_requests"] <= 900 // 200 + 1 + 1  # pages + end of stream (+ event-actions apart)
        assert store.values == {}, "the checkpoint must be cleared on success"
        assert store.writes == 5  # after every page: each got a receipt from the receiver

    def test_archive_is_gzipped_json_lines_and_overwritten(self, simulator, syslog_ng, tmp_path):
        archive = tmp_path / "archive"
        for _ in range(2):
            operator(archive_path=f"file://{archive}").execute({"task_state_store": DictStore()})
        files = list(archive.rglob("*.jsonl.gz"))
        assert len(files) == 1
        with gzip.open(files[0], "rt", encoding="utf-8") as handle:
            archived = [json.loads(line) for line in handle]
        assert [e["id"] for e in archived] == simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        assert archived == simulator.events_between(HOUR, HOUR + timedelta(hours=1))

    @pytest.mark.parametrize("archive", [False, True])
    def test_retry_resumes_after_the_last_checkpoint(self, simulator, syslog_ng, tmp_path, archive):
        store = DictStore()
        kwargs: dict[str, Any] = {"archive_path": f"file://{tmp_path}/archive"} if archive else {}
        # The API breaks for good after 3 pages: attempt 1 fails mid-window with some pages delivered.
        simulator.faults.update(revoke_key_after=4)  # event-actions + 3 pages
        with pytest.raises(Exception, match="401"):
            operator(**kwargs).execute({"task_state_store": store})
        checkpoint = store.values[CHECKPOINT_KEY]
        # 600 events were sent over TCP and syslog-ng gave a receipt for each page: the checkpoint is exact.
        assert checkpoint["delivered"] == 600
        simulator.faults.update(revoke_key_after=None)
        summary = operator(**kwargs).execute({"task_state_store": store})
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        got = received_ids(syslog_ng.wait_for_lines(len(truth)))
        assert set(got) == set(truth)
        assert max(got.values()) == 1, "nothing is sent twice when every page had a receipt"
        assert summary["resumed_after"] == 600 and summary["sent"] == len(truth)
        assert store.values == {}

    def test_without_receipts_the_checkpoint_trails_one_page(self, simulator, syslog_ng, monkeypatch):
        conn = json.loads(os.environ["AIRFLOW_CONN_QRADAR_DEFAULT"])
        conn["extra"]["confirm_delivery"] = False
        monkeypatch.setenv("AIRFLOW_CONN_QRADAR_DEFAULT", json.dumps(conn))
        store = DictStore()
        simulator.faults.update(revoke_key_after=4)  # event-actions + 3 pages
        with pytest.raises(Exception, match="401"):
            operator().execute({"task_state_store": store})
        # 600 events handed to TCP without a receipt: the last page may still have been in flight.
        assert store.values[CHECKPOINT_KEY]["delivered"] == 400
        simulator.faults.update(revoke_key_after=None)
        operator().execute({"task_state_store": store})
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        got = received_ids(syslog_ng.wait_for_lines(len(truth) + 200))
        assert set(got) == set(truth)
        assert sum(got.values()) == len(truth) + 200, "exactly the trailing page is sent twice"

    def test_retry_after_receiver_loss_resends_at_most_one_batch(self, simulator, syslog_ng):
        store = DictStore()
        simulator.faults.update(slow_seconds=0.2)
        import airflow_provider_atlassian_qradar.transfers.atlassian_to_qradar as module

        pages_sent = {"n": 0}

        class StopReceiverAfterTwoPages:
            """Stop syslog-ng for good after the second page is handed over: the sender must give up."""

            def __init__(self, inner):
                self.inner = inner

            def __getattr__(self, name):
                return getattr(self.inner, name)

            def __enter__(self):
                self.inner.__enter__()
                return self

            def __exit__(self, *exc):
                return self.inner.__exit__(*exc)

            def send(self, records):
                count = self.inner.send(records)
                pages_sent["n"] += 1
                if pages_sent["n"] == 2:
                    syslog_ng.stop()
                return count

        hook_class = module.QRadarHook
        original_send = hook_class.get_sender

        def wrapped(self):
            return StopReceiverAfterTwoPages(original_send(self))

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(hook_class, "get_sender", wrapped)
            with pytest.raises(Exception, match=r"127\.0\.0\.1"):
                operator().execute({"task_state_store": store})
        delivered_before = store.values[CHECKPOINT_KEY]["delivered"]
        assert delivered_before == 200  # page 1 has a receipt; page 2 was in flight when syslog-ng stopped
        syslog_ng.start()
        simulator.faults.update(slow_seconds=0)
        operator().execute({"task_state_store": store})
        truth = simulator.ground_truth(HOUR, HOUR + timedelta(hours=1))
        got = received_ids(syslog_ng.wait_for_lines(len(truth) - 200, timeout=30))
        assert set(truth) <= set(got), f"missing {len(set(truth) - set(got))} events"
        assert sum(got.values()) - len(truth) <= 200, "more than one page delivered twice"

    def test_without_task_state_store_it_resends_the_window_and_says_so(self, simulator, syslog_ng, capsys):
        summary = operator().execute({})
        assert summary["sent"] == len(simulator.ground_truth(HOUR, HOUR + timedelta(hours=1)))
        assert "no task state store" in capsys.readouterr().out

    def test_api_key_never_in_summary_or_logs(self, simulator, syslog_ng, capsys):
        summary = operator().execute({"task_state_store": DictStore()})
        captured = capsys.readouterr()
        assert API_KEY not in json.dumps(summary) + captured.out + captured.err
        assert API_KEY not in "\n".join(syslog_ng.lines())


class TestAtlassianAuditLogToQRadarOperatorPermanentErrors:
    @pytest.mark.parametrize(
        ("faults", "message"),
        [
            ({"revoke_key_after": 1}, "401"),
            ({"forbidden": 2}, "read:events:admin"),  # event-actions (tolerated), then the stream
            ({"foreign_next_link": 1}, "refusing to follow links"),
        ],
    )
    def test_errors_no_retry_can_fix_fail_the_task_without_retries(self, simulator, syslog_ng, faults, message):
        simulator.faults.update(**faults)
        with pytest.raises(AirflowFailException, match=message) as info:
            operator().execute({"task_state_store": DictStore()})
        assert API_KEY not in str(info.value)

    def test_tls_verification_failure_is_permanent(self, simulator, monkeypatch, tmp_path):
        require_syslog_ng()
        certs = generate_certs(tmp_path / "certs")
        with SyslogNg(tmp_path, "tls", tls_cert=certs.server_cert, tls_key=certs.server_key) as receiver:
            monkeypatch.setenv(QRADAR_CONN_VAR, qradar_connection(receiver.port, "tls"))  # no ca_cert: untrusted
            with pytest.raises(AirflowFailException, match="Set ca_cert"):
                operator().execute({"task_state_store": DictStore()})

    def test_a_failed_attempt_leaves_no_raw_events_on_local_disk(self, simulator, syslog_ng, tmp_path, monkeypatch):
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        monkeypatch.setattr("tempfile.tempdir", str(scratch))
        simulator.faults.update(revoke_key_after=3)
        with pytest.raises(AirflowFailException):
            operator(archive_path=f"file://{tmp_path}/archive").execute({"task_state_store": DictStore()})
        assert list(scratch.iterdir()) == []
