"""Even pacing per API path, from the caller's claim on its share (pure: a fake clock, no Airflow)."""

from __future__ import annotations

import random

import pytest

from airflow_provider_atlassian_qradar.atlassian_api.pacing import RequestPacer


class TestRequestPacer:
    @pytest.fixture
    def clock(self, monkeypatch) -> list[float]:
        now = [1000.0]

        def fake_sleep(seconds: float) -> None:
            now[0] += seconds

        monkeypatch.setattr("airflow_provider_atlassian_qradar.atlassian_api.pacing.time.monotonic", lambda: now[0])
        monkeypatch.setattr("airflow_provider_atlassian_qradar.atlassian_api.pacing.time.sleep", fake_sleep)
        return now

    def test_spaces_requests_evenly(self, clock):
        pacer = RequestPacer(per_minute=12, claimed_at=clock[0] - 60)  # one every 5 s, plus 2% for jitter
        assert pacer.wait() == 0.0
        assert pacer.wait() == pytest.approx(5.1)
        assert pacer.wait() == pytest.approx(5.1)
        assert clock[0] - 1000.0 == pytest.approx(10.2)

    def test_the_first_request_waits_one_interval_from_the_claim(self, clock):
        pacer = RequestPacer(per_minute=12)  # claimed now
        clock[0] += 2.0  # the task's start-up runs inside the first interval
        assert pacer.wait() == pytest.approx(3.1)
        assert clock[0] - 1000.0 == pytest.approx(5.1)

    @pytest.mark.parametrize("share", [12.5, 12, 50, 10, 2.5, 1, 0.4])
    def test_no_60_second_span_holds_more_than_the_whole_share(self, clock, share):
        pacer = RequestPacer(per_minute=share)
        sent = []
        for _ in range(200):
            pacer.wait()
            sent.append(clock[0])
        busiest = max(sum(1 for t in sent if start <= t < start + 60) for start in sent)
        assert busiest <= int(share) or (share < 1 and busiest == 1)

    @pytest.mark.parametrize("slots", [4, 5, 10, 25, 50])
    def test_tasks_taking_freed_slots_never_exceed_the_budget(self, clock, slots):
        """Each slot runs task after task (random start-up, 1-3 requests, random work, random scheduling gap),
        each task pacing from its own start with no hold at its end: no 60 s span exceeds the budget."""
        rng = random.Random(slots)
        share = 50 / slots
        sent: list[float] = []
        for _slot in range(slots):
            clock[0] = 1000.0 + rng.uniform(0, 1)
            while clock[0] < 1600.0:
                pacer = RequestPacer(per_minute=share)  # the task starts: its claim begins
                clock[0] += rng.choice([0.0, 0.5, 2.0, rng.uniform(0, 30)])  # process start-up, DAG parse
                for _request in range(rng.randint(1, 3)):
                    pacer.wait()
                    sent.append(clock[0])
                    clock[0] += rng.uniform(0, 1.5)  # the response, sending to QRadar
                clock[0] += rng.choice([0.0, 0.1, rng.uniform(0, 5)])  # the slot passes to the next task
        sent.sort()
        busiest = max(sum(1 for t in sent if start <= t < start + 60) for start in sent)
        assert busiest <= 50
        assert busiest >= 30  # and the slots together do use much of it (start-ups of up to 30 s included)

    def test_a_share_under_one_a_minute_keeps_its_true_spacing(self, clock):
        pacer = RequestPacer(per_minute=0.4, claimed_at=clock[0] - 1000)  # 25 slots of a 10/min path
        pacer.wait()
        assert pacer.wait() == pytest.approx(153.0)

    def test_idle_time_is_not_banked_into_a_burst(self, clock):
        pacer = RequestPacer(per_minute=12)
        pacer.wait()
        clock[0] += 60.0
        assert pacer.wait() == 0.0
        assert pacer.wait() == pytest.approx(5.1)

    def test_zero_means_unpaced(self):
        pacer = RequestPacer(per_minute=0)
        assert all(pacer.wait() == 0.0 for _ in range(100))
