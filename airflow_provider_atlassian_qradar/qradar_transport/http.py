"""QRadar's HTTP Receiver: LEEF lines POSTed in batches, retried on 5xx/429, split on 413."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from airflow_provider_atlassian_qradar.qradar_transport.sender import (
    EventSender,
    QRadarDeliveryError,
    Record,
    batched,
    retrying,
)

log = logging.getLogger(__name__)


class _SSLContextAdapter(HTTPAdapter):
    """A requests adapter that uses our :class:`ssl.SSLContext` (CA pinning, encrypted client keys)."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        verifying = self._ssl_context.verify_mode != ssl.CERT_NONE  # explicit opt-in follows the context
        return host_params, {
            "ssl_context": self._ssl_context,
            "cert_reqs": "CERT_REQUIRED" if verifying else "CERT_NONE",  # explicit opt-in: verify=false only
        }


class _RetryableStatus(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason}")
        self.response = response


def _retryable_http(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, (_RetryableStatus, requests.ConnectionError, requests.Timeout))


class HttpSender(EventSender):
    """
    POST LEEF lines, one per line (no syslog header), to QRadar's HTTP Receiver.

    Configure the log source with Message Pattern ``LEEF:`` so that each line becomes one event. A 2xx answer
    means accepted. 5xx, 429 and connection errors are retried with exponential backoff; 413 splits the batch in
    halves until it fits; any other 4xx raises :class:`QRadarDeliveryError` with the status and the fix.

    :param url: receiver URL, e.g. ``https://qradar-ec.example.com:12469/``.
    :param session_factory: builds the :class:`requests.Session` (injectable for tests).
    :param batch_size: events per POST.
    :param verify: verify the server certificate (or a CA bundle path); ignored when ``ssl_context`` is given.
    :param cert: client certificate path or ``(cert, key)`` paths; ignored when ``ssl_context`` is given.
    :param timeout: ``(connect, read)`` seconds per request.
    :param retries: attempts per POST for retryable failures.
    :param retry_backoff: ``(first, longest)`` wait in seconds between attempts.
    :param ssl_context: client TLS context from :func:`build_ssl_context` (CA pinning, encrypted client keys).
    """

    confirms_delivery = True

    def __init__(
        self,
        url: str,
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
        batch_size: int = 500,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        timeout: float | tuple[float, float] = (10.0, 30.0),
        retries: int = 5,
        retry_backoff: tuple[float, float] = (0.5, 30.0),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.url = url
        self.session_factory = session_factory
        self.batch_size = batch_size
        self.verify = verify
        self.cert = cert
        self.timeout = timeout
        self.retries = max(retries, 1)
        self.retry_backoff = retry_backoff
        self.ssl_context = ssl_context
        self._session: requests.Session | None = None

    def open(self) -> None:
        """Create the HTTP session (connections are opened by the first request)."""
        if self._session is not None:
            return
        session = self.session_factory()
        if self.ssl_context is not None:
            session.mount("https://", _SSLContextAdapter(self.ssl_context))
        self._session = session

    def close(self) -> None:
        """Close the HTTP session."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def send(self, records: Iterable[Record]) -> int:
        """
        POST events in batches of ``batch_size`` lines.

        :param records: ``(leef_line, event_time_ms)`` pairs; the time is not used (no syslog header).
        :return: number of events the receiver accepted in this call.
        """
        self.open()
        handed = 0
        for chunk in batched(records, self.batch_size):
            lines = [line for line, _ in chunk]
            for line in lines:
                if "\n" in line or "\r" in line:
                    raise ValueError(
                        "LEEF line contains a CR or LF: the HTTP Receiver would split it into two events; "
                        "escape the value in the LEEF encoder"
                    )
            handed += self._post_lines(lines)
        return handed

    def _post_once(self, body: bytes) -> requests.Response:
        assert self._session is not None
        response = self._session.post(
            self.url,
            data=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=self.timeout,
            verify=self.verify if self.ssl_context is None else True,
            cert=self.cert if self.ssl_context is None else None,
            allow_redirects=False,
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise _RetryableStatus(response)
        return response

    def _post_lines(self, lines: list[str]) -> int:
        body = "\n".join(lines).encode("utf-8")
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.replayed += len(lines)
            return self._post_once(body)

        try:
            response = retrying(
                self.retries,
                self.retry_backoff,
                _retryable_http,
                f"QRadar HTTP Receiver at {self.url}",
                logging.WARNING,
            )(attempt)
        except _RetryableStatus as exc:
            raise QRadarDeliveryError(
                f"QRadar HTTP Receiver at {self.url} kept answering {exc} after {attempts} attempts: check that "
                "the HTTP Receiver log source is enabled and the event collector is healthy"
            ) from None
        except requests.exceptions.SSLError as exc:
            raise QRadarDeliveryError(
                f"TLS with the QRadar HTTP Receiver at {self.url} failed: {exc}. Set ca_cert to the CA that "
                "issued the receiver's certificate and check client_cert for HTTPS with client authentication",
                permanent=True,
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise QRadarDeliveryError(
                f"cannot reach the QRadar HTTP Receiver at {self.url} after {attempts} attempts ({exc}): check "
                "host, port (12469 by default), protocol http/https and the firewall"
            ) from None
        if attempts > 1:
            # A retried POST may already have been accepted once (e.g. the answer was lost).
            self.possibly_duplicated += len(lines)
        status = response.status_code
        if 200 <= status < 300:
            self.delivered += len(lines)
            return len(lines)
        if status == 413:
            if len(lines) == 1:
                # One event cannot be split further: every retry would get the same 413.
                raise QRadarDeliveryError(
                    f"QRadar HTTP Receiver at {self.url} rejected a single event of {len(body)} bytes as too large "
                    "(413): lower max_frame_bytes or raise the receiver's maximum payload size",
                    permanent=True,
                )
            middle = len(lines) // 2
            log.info("HTTP Receiver answered 413 for %d events; splitting the batch in halves", len(lines))
            return self._post_lines(lines[:middle]) + self._post_lines(lines[middle:])
        if 300 <= status < 400:
            hint = "redirects are not followed: point the connection at the receiver itself"
        elif status in (401, 403):
            hint = "the receiver or a proxy in front of it refused this client: check client_cert and the proxy"
        elif status == 404:
            hint = "nothing receives events at that path: use the HTTP Receiver's port and path /"
        else:
            hint = "check that the port belongs to an HTTP Receiver log source and the events are plain text"
        raise QRadarDeliveryError(
            f"QRadar HTTP Receiver at {self.url} answered {status} {response.reason}: {hint}", permanent=True
        )
