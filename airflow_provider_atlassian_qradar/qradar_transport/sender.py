"""What every QRadar sender shares: the record type, the error type, the sender interface and the retry policy."""

from __future__ import annotations

import abc
import itertools
import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from airflow_provider_atlassian_qradar.qradar_transport.syslog import SyslogFormatter

log = logging.getLogger(__name__)

#: One event for :meth:`EventSender.send`: the LEEF line and its event time in epoch milliseconds (or None).
Record = tuple[str, "int | None"]


class QRadarDeliveryError(Exception):
    """Events could not be handed to QRadar; the message names the cause and what to check.

    :param permanent: True when retrying cannot help until someone changes the configuration (a rejected
        certificate, an HTTP 4xx); the operator then fails the task without using up its retries.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def batched(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """Split ``records`` into lists of ``size`` (the last one may be shorter)."""
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def retrying(
    attempts: int,
    backoff: tuple[float, float],
    retry_if: Callable[[BaseException], bool],
    where: str,
    level: int = logging.INFO,
) -> Retrying:
    """
    The retry policy of the senders: up to ``attempts`` tries, exponential backoff with jitter, a log line each.

    :param attempts: tries in all (at least one).
    :param backoff: ``(first, longest)`` wait in seconds between tries.
    :param retry_if: which exceptions are worth another try; any other is raised at once.
    :param where: the receiver as the log line names it, e.g. ``QRadar at host:514``.
    :param level: log level of the line written before each wait.
    """
    first, longest = backoff
    return Retrying(
        stop=stop_after_attempt(max(attempts, 1)),
        wait=wait_exponential(multiplier=first, max=longest) + wait_random(0, first),
        retry=retry_if_exception(retry_if),
        before_sleep=lambda state: log.log(
            level,
            "%s: attempt %d failed (%s); retrying",
            where,
            state.attempt_number,
            state.outcome.exception() if state.outcome else "?",
        ),
        reraise=True,
    )


class EventSender(abc.ABC):
    """
    Common interface of the senders: a context manager that frames and writes LEEF events.

    :ivar delivered: events handed to the transport so far (replays not counted).
    :ivar replayed: events written again after a dropped connection or a retried request.
    :ivar reconnects: connections re-established after a drop.
    :ivar possibly_duplicated: events that the receiver may have got twice (at-least-once delivery).
    :cvar confirms_delivery: whether a successful ``send`` means the receiver acknowledged the events
        (HTTP 2xx), rather than that they were handed to the kernel (syslog).
    """

    confirms_delivery = False

    def __init__(self) -> None:
        self.delivered = 0
        self.replayed = 0
        self.reconnects = 0
        self.possibly_duplicated = 0

    def __enter__(self) -> EventSender:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @abc.abstractmethod
    def open(self) -> None:
        """Connect (idempotent); ``send`` calls it when needed."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release the connection (idempotent)."""

    @abc.abstractmethod
    def send(self, records: Iterable[Record]) -> int:
        """
        Frame and write events.

        :param records: ``(leef_line, event_time_ms)`` pairs; lines are already LEEF-escaped single lines.
        :return: number of events handed to the transport by this call.
        """

    def request_receipt(self) -> None:
        """
        Ask for a receipt for everything sent so far without waiting for it (:meth:`confirm` waits).

        Lets the receiver work through the last page while the caller fetches the next one. Optional: ``confirm``
        asks by itself when this was not called.
        """
        return  # nothing to ask for in advance on this transport

    def confirm(self) -> bool:
        """
        Wait until the receiver has provably read every event sent so far.

        :return: True when it has (a later drop can then not make them be sent again), False when this transport
            cannot tell (UDP, or a TCP receiver that gives no receipt): the caller must assume the newest events
            may still be re-sent or lost.
        :raises QRadarDeliveryError: if the receiver cannot be reached again to re-send unconfirmed events.
        """
        return self.confirms_delivery


class SyslogSender(EventSender):
    """
    Base of the syslog senders (TCP, TLS, UDP): where QRadar listens and the syslog header to put on each event.

    :param host: QRadar event collector host name or IP.
    :param port: syslog port.
    :param formatter: the syslog header and framing to apply.
    """

    def __init__(self, host: str, port: int, formatter: SyslogFormatter) -> None:
        super().__init__()
        self.host = host
        self.port = int(port)
        self.formatter = formatter
        self._sock: socket.socket | None = None

    @property
    def address(self) -> str:
        """``host:port`` as shown in messages."""
        return f"{self.host}:{self.port}"

    def unresolvable(self, exc: socket.gaierror) -> str:
        """The message for a host name that does not resolve."""
        return f"cannot resolve QRadar host {self.host!r} ({exc.strerror}): check the connection's host and DNS"
