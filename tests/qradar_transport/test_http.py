"""HttpSender against a real HTTPS server: batching, retries, 413 splitting, 4xx, TLS."""

from __future__ import annotations

import pytest

from airflow_provider_atlassian_qradar.qradar_transport import HttpSender, QRadarDeliveryError, build_ssl_context
from sandbox.leef_samples import make_leef_records
from sandbox.receivers import CLIENT_KEY_PASSPHRASE, CertBundle, HttpsReceiver
from tests.qradar_transport.support import FAST_BACKOFF

pytestmark = pytest.mark.timeout(120)


class TestHttpSender:
    def _sender(self, receiver: HttpsReceiver, certs: CertBundle, **kwargs) -> HttpSender:
        kwargs.setdefault("ssl_context", build_ssl_context(ca_cert=str(certs.ca_cert)))
        kwargs.setdefault("retry_backoff", FAST_BACKOFF)
        return HttpSender(receiver.url, **kwargs)

    def test_batches_are_posted_as_lf_joined_lines(self, certs):
        records = make_leef_records(1_200)
        with HttpsReceiver(certs.server_cert, certs.server_key) as receiver:
            with self._sender(receiver, certs, batch_size=500) as sender:
                assert sender.send(records) == 1_200
        assert [len(post.body.split(b"\n")) for post in receiver.posts] == [500, 500, 200]
        assert {post.content_type for post in receiver.posts} == {"text/plain; charset=utf-8"}
        assert receiver.accepted_lines() == [line for line, _ in records]
        assert not receiver.posts[0].body.startswith(b"<")  # no syslog header

    def test_503_then_200_is_retried_without_duplicates(self, certs):
        records = make_leef_records(300)
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[503, 200]) as receiver:
            with self._sender(receiver, certs, batch_size=500) as sender:
                sender.send(records)
        assert [post.status for post in receiver.posts] == [503, 200]
        assert receiver.accepted_lines() == [line for line, _ in records]
        assert (sender.delivered, sender.replayed) == (300, 300)

    def test_413_splits_the_batch_until_it_fits(self, certs):
        records = make_leef_records(500)
        with HttpsReceiver(certs.server_cert, certs.server_key, max_body_bytes=60 * 401) as receiver:
            with self._sender(receiver, certs, batch_size=500) as sender:
                assert sender.send(records) == 500
        assert receiver.accepted_lines() == [line for line, _ in records]
        assert 413 in [post.status for post in receiver.posts]
        assert sender.delivered == 500

    def test_single_event_too_large_is_a_clear_error(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, max_body_bytes=100) as receiver:
            with self._sender(receiver, certs) as sender, pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(4))
        assert "rejected a single event of 400 bytes as too large (413)" in str(error.value)
        assert error.value.permanent, "one event cannot be split further: retrying gets the same 413"

    def test_400_is_not_retried_and_names_the_status(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[400]) as receiver:
            with self._sender(receiver, certs) as sender, pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(3))
        assert "answered 400 Bad Request" in str(error.value)
        assert len(receiver.posts) == 1

    def test_persistent_5xx_gives_up(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key, responses=[503] * 10) as receiver:
            with self._sender(receiver, certs, retries=3) as sender, pytest.raises(QRadarDeliveryError) as error:
                sender.send(make_leef_records(3))
        assert "kept answering HTTP 503 Service Unavailable after 3 attempts" in str(error.value)

    def test_untrusted_server_is_a_tls_error(self, certs):
        with HttpsReceiver(certs.server_cert, certs.server_key) as receiver:
            sender = self._sender(receiver, certs, ssl_context=build_ssl_context(ca_cert=str(certs.other_ca_cert)))
            with sender, pytest.raises(QRadarDeliveryError, match="TLS with the QRadar HTTP Receiver"):
                sender.send(make_leef_records(1))
        assert receiver.posts == []

    def test_mutual_tls(self, certs):
        context = build_ssl_context(
            ca_cert=str(certs.ca_cert),
            client_cert=str(certs.client_cert),
            client_key=str(certs.client_key_encrypted),
            key_passphrase=CLIENT_KEY_PASSPHRASE,
        )
        with HttpsReceiver(certs.server_cert, certs.server_key, client_ca=certs.ca_cert) as receiver:
            with self._sender(receiver, certs, ssl_context=context) as sender:
                sender.send(make_leef_records(10))
        assert len(receiver.accepted_lines()) == 10
