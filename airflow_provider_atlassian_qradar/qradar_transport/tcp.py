"""
Syslog over TCP: chunked writes, drop detection, reconnect and re-send, and a receipt per page.

A receipt is a clean close by the receiver after a half-close; no receipt is a failure, never a silent switch to
sending without receipts (docs/delivery.md, "Delivery guarantees", says why).
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import ssl
from collections.abc import Iterable

from tenacity import Retrying

from airflow_provider_atlassian_qradar.qradar_transport.receipts import (
    DEFAULT_RECEIVER_BUFFER_BYTES,
    ResendQueue,
    require_all_acknowledged,
    unacknowledged_bytes,
)
from airflow_provider_atlassian_qradar.qradar_transport.sender import (
    QRadarDeliveryError,
    Record,
    SyslogSender,
    batched,
    retrying,
)
from airflow_provider_atlassian_qradar.qradar_transport.syslog import SyslogFormatter

log = logging.getLogger(__name__)


class _WriteTimeout(TimeoutError):
    """A write (or the wait for a receipt) to a connected receiver timed out: it accepted but did not read."""


def _is_transient(exc: BaseException) -> bool:
    """Tell a network hiccup worth retrying from a configuration error that retrying cannot fix."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    if isinstance(exc, ssl.SSLError):
        # The peer vanishing mid-handshake is transient; a rejected certificate or protocol is not.
        return isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError))
    if isinstance(exc, socket.gaierror):
        return exc.errno == socket.EAI_AGAIN
    return isinstance(exc, OSError)


class TcpSender(SyslogSender):
    """
    Send syslog-framed LEEF events over TCP, in chunks of ``batch_size`` events per ``sendall``.

    Before each chunk the socket is checked (without blocking) for a peer close or reset. After a drop the sender
    reconnects with backoff and jitter and re-sends every chunk since the last receipt, then the current chunk; it
    gives up after ``max_reconnects`` attempts with :class:`QRadarDeliveryError`.

    :param host: QRadar event collector host name or IP.
    :param port: syslog TCP port (514 by default on QRadar).
    :param formatter: the syslog header and framing to apply.
    :param batch_size: events per write.
    :param connect_timeout: seconds to establish the connection (and TLS handshake).
    :param write_timeout: seconds one chunk may take to write before the connection counts as dead.
    :param max_reconnects: connection attempts at start, and reconnect attempts after each drop.
    :param reconnect_backoff: ``(first, longest)`` wait in seconds between attempts; exponential with jitter.
    :param receiver_buffer_bytes: without receipts only: extra bytes of recent frames to re-send after a drop,
        for data the receiver acknowledged into its socket buffer but had not read when it closed (measured:
        syslog-ng on loopback with a 64 KiB ``so-rcvbuf`` abandoned up to ~40 KiB on SIGTERM).
    :param confirm_delivery: ask the receiver for receipts (see :meth:`confirm`); ``False`` only for a receiver
        that keeps a connection open after end-of-data.
    """

    transport_name = "TCP"
    #: TLS must exchange close_notify first, which blocks; only plain TCP half-closes ahead of ``confirm``.
    _can_half_close_early = True

    def __init__(
        self,
        host: str,
        port: int,
        formatter: SyslogFormatter,
        *,
        batch_size: int = 200,
        connect_timeout: float = 10.0,
        write_timeout: float = 30.0,
        max_reconnects: int = 10,
        reconnect_backoff: tuple[float, float] = (0.5, 30.0),
        receiver_buffer_bytes: int = DEFAULT_RECEIVER_BUFFER_BYTES,
        confirm_delivery: bool = True,
    ) -> None:
        super().__init__(host, port, formatter)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if receiver_buffer_bytes < 0:
            raise ValueError(f"receiver_buffer_bytes must be 0 or more, got {receiver_buffer_bytes}")
        if max_reconnects < 0:
            raise ValueError(f"max_reconnects must be 0 or more, got {max_reconnects}")
        self.batch_size = batch_size
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.max_reconnects = max_reconnects
        self.reconnect_backoff = reconnect_backoff
        self.receiver_buffer_bytes = receiver_buffer_bytes
        self.confirm_delivery = confirm_delivery
        self._resend = ResendQueue(confirm_delivery, receiver_buffer_bytes)
        # The current connection is half-closed already (a receipt was asked for): nothing more can be written on it.
        self._half_closed = False

    @property
    def receipts(self) -> bool:
        """Whether receipts are asked for: ``confirm_delivery``, fixed for the sender's life."""
        return self.confirm_delivery

    # -- connection -------------------------------------------------------------------------------------------

    def _wrap(self, sock: socket.socket) -> socket.socket:
        """Hook for TLS: return the socket to write to."""
        return sock

    def connect_once(self) -> socket.socket:
        """Open one connection without retrying (also used by ``test_connection``)."""
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            # Writes are whole chunks anyway; without this, TLS close_notify waits out a 40 ms delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            wrapped = self._wrap(sock)
            wrapped.settimeout(self.write_timeout)
        except BaseException:
            sock.close()
            raise
        return wrapped

    def _retrying(self, attempts: int) -> Retrying:
        return retrying(attempts, self.reconnect_backoff, _is_transient, f"QRadar at {self.address}")

    def explain(self, exc: BaseException) -> str:
        """Turn a connection error into a message that names the cause and what to check."""
        if isinstance(exc, ConnectionRefusedError):
            return (
                f"QRadar at {self.address} refused the connection: is the log source listening on that port / "
                "is the firewall open?"
            )
        if isinstance(exc, socket.gaierror):
            return self.unresolvable(exc)
        if isinstance(exc, _WriteTimeout):
            return (
                f"QRadar at {self.address} accepted the connection but did not read: {exc} (write_timeout "
                f"{self.write_timeout:g}s); the receiver is stalled or overloaded: check its health and its "
                "event pipeline"
            )
        if isinstance(exc, TimeoutError):
            return (
                f"QRadar at {self.address} did not answer within {self.connect_timeout:g}s (connect timeout): check "
                "host, port, routing and that no firewall silently drops the traffic"
            )
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return (
                f"QRadar at {self.address} closed the connection ({exc.strerror or exc}): check that the "
                f"listener speaks {self.transport_name} syslog on that port and accepts this client"
            )
        return f"cannot connect to QRadar at {self.address} over {self.transport_name}: {exc}"

    def open(self) -> None:
        """Connect, retrying refused or timed-out attempts with backoff up to ``max_reconnects`` times."""
        if self._sock is not None:
            return
        attempts = 0

        def connect() -> socket.socket:
            nonlocal attempts
            attempts += 1
            return self.connect_once()

        try:
            self._sock = self._retrying(self.max_reconnects + 1)(connect)
        except OSError as exc:
            raise QRadarDeliveryError(
                f"{self.explain(exc)} (gave up after {attempts} attempts)", permanent=not _is_transient(exc)
            ) from exc
        log.debug("connected to QRadar at %s over %s", self.address, self.transport_name)

    def _half_close(self, sock: socket.socket) -> None:
        """Tell the receiver that no more data follows (without waiting)."""
        sock.shutdown(socket.SHUT_WR)

    def _graceful_shutdown(self, sock: socket.socket) -> socket.socket:
        """Half-close (unless already done) and wait for the receiver to close too."""
        if not self._half_closed:
            self._half_close(sock)
        while sock.recv(65536):
            pass
        return sock

    def _discard_socket(self, graceful: bool) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if graceful:
                sock = self._graceful_shutdown(sock)
        except OSError as exc:
            if graceful and self.receipts and self._resend:
                log.warning(
                    "QRadar at %s: no clean close (%s): the events sent since the last receipt may be lost",
                    self.address,
                    exc,
                )
            else:
                log.debug("QRadar at %s: no clean close (%s)", self.address, exc)
        finally:
            self._half_closed = False
            sock.close()

    def close(self) -> None:
        """Flush: half-close, wait (up to ``write_timeout``) for the receiver to read everything, then close."""
        self._discard_socket(graceful=True)

    # -- receipts ---------------------------------------------------------------------------------------------

    def request_receipt(self) -> None:
        """Half-close now, so the receiver reads the rest while the caller works; :meth:`confirm` waits."""
        sock = self._sock
        if sock is None or self._half_closed or not (self._can_half_close_early and self.receipts and self._resend):
            return
        try:
            self._half_close(sock)
        except OSError as exc:  # the receiver is gone: confirm() finds out and re-sends
            log.debug("QRadar at %s: half-close failed (%s)", self.address, exc)
        self._half_closed = True

    def confirm(self) -> bool:
        """
        Get a receipt for everything sent since the last one: half-close, and wait for the receiver to close.

        A clean close with no byte left unacknowledged is the receipt; it counts only if the receiver accepts the
        next connection at once (one that is shutting down may have read events it never processed). A failed
        receipt re-sends the unconfirmed chunks on a new connection and asks again.

        :return: True with a receipt; False without receipts (``confirm_delivery=False``).
        :raises QRadarDeliveryError: if the receiver does not close within ``write_timeout`` of end-of-data (no
            receipt: a failure, never a silent downgrade), or cannot be reached again within ``max_reconnects``.
        """
        if not self.receipts:
            return False
        for _ in range(self.max_reconnects + 1):
            if not self._resend:
                return True  # nothing sent since the last receipt
            sock, self._sock = self._sock, None
            if sock is None:  # dropped earlier: reconnect and re-send first
                self._recover(ConnectionResetError(errno.ECONNRESET, "no open connection"))
                continue
            try:
                require_all_acknowledged(self._graceful_shutdown(sock))
            except TimeoutError:
                # No receipt: the receiver may have stopped reading (the events sit unread in its buffers and die
                # with it) or may never close at end-of-data. Both look the same from here, so this is a failure:
                # the caller's checkpoint stays before these events and a retry re-sends them.
                unacknowledged = unacknowledged_bytes(sock)
                raise QRadarDeliveryError(
                    f"QRadar at {self.address} gave no receipt: the wait for it to close the connection after "
                    f"end-of-data timed out after {self.write_timeout:g}s (write_timeout), with "
                    f"{self._resend.unconfirmed_bytes:,} bytes unconfirmed ({unacknowledged:,} not even acknowledged "
                    "by its TCP stack). Either the receiver stopped reading (check its health; the task retry "
                    "re-sends these events) or it never closes connections at end-of-data: then set the connection "
                    "extra confirm_delivery to false, knowing that a dropped connection can then lose or repeat the "
                    "events in flight"
                ) from None
            except OSError as exc:
                log.warning("QRadar at %s closed before reading everything (%s); re-sending", self.address, exc)
                self._recover(exc)
                continue
            finally:
                self._half_closed = False
                sock.close()
            try:
                self._sock = self.connect_once()
            except OSError as exc:
                log.warning(
                    "QRadar at %s went away right after closing (%s): it may have been shutting down with events "
                    "read but not processed; re-sending the events since the last receipt",
                    self.address,
                    exc,
                )
                self._recover(exc)
                continue
            self._resend.clear()
            return True
        raise QRadarDeliveryError(
            f"QRadar at {self.address} dropped the connection {self.max_reconnects + 1} times before reading "
            "the events sent since the last receipt: check the receiver's health and logs"
        )

    # -- writing ----------------------------------------------------------------------------------------------

    def _peer_dropped(self, sock: socket.socket) -> bool:
        """A cheap, non-blocking check for a FIN or RST from the receiver (syslog receivers never send data)."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    def send(self, records: Iterable[Record]) -> int:
        """
        Frame events and write them in chunks of ``batch_size`` with one ``sendall`` each.

        :param records: ``(leef_line, event_time_ms)`` pairs.
        :return: number of events handed to the transport by this call.
        :raises QRadarDeliveryError: if the connection cannot be (re-)established.
        """
        frame = self.formatter.frame
        handed = 0
        for chunk in batched(records, self.batch_size):
            if self._half_closed or self._resend.full:
                self.confirm()
            self.open()
            payload = b"".join([frame(line, event_time_ms) for line, event_time_ms in chunk])
            self._write_chunk(payload, len(chunk))
            handed += len(chunk)
            self.delivered += len(chunk)
        return handed

    def _write_chunk(self, payload: bytes, count: int) -> None:
        sock = self._sock
        cause: BaseException | None = None
        current_started = False
        if sock is None:
            cause = ConnectionResetError(errno.ECONNRESET, "no open connection after an earlier failure")
        elif self._peer_dropped(sock):
            cause = ConnectionResetError(errno.ECONNRESET, "the receiver closed the connection")
        else:
            self._resend.size_send_buffer(sock, len(payload))
            try:
                self._sendall(sock, payload)
            except OSError as exc:  # BrokenPipe, ConnectionReset, timeout, TLS errors
                cause = exc
                current_started = True
        if cause is not None:
            self._recover(cause, payload, count, current_started)
        self._resend.remember(payload, count)

    def _sendall(self, sock: socket.socket, data: bytes) -> None:
        """``sendall`` whose timeout says it was a write to a connected receiver, not a connect."""
        try:
            sock.sendall(data)
        except TimeoutError:
            raise _WriteTimeout(f"a write of {len(data):,} bytes timed out") from None

    def _recover(
        self, cause: BaseException, payload: bytes | None = None, count: int = 0, current_started: bool = False
    ) -> None:
        """Reconnect, re-send what the receiver may not have read, then ``payload`` (a replay if it was started)."""
        replay = list(self._resend.chunks)
        replay_count = sum(chunk_count for _, chunk_count in replay)
        at_risk = replay_count + (count if current_started else 0)
        log.warning("connection to QRadar at %s dropped (%s); reconnecting", self.address, cause)
        self._discard_socket(graceful=False)
        largest_chunk = len(payload) if payload else max((len(chunk) for chunk, _ in replay), default=0)

        attempts = 0

        def reconnect_and_replay() -> None:
            nonlocal attempts
            attempts += 1
            self._discard_socket(graceful=False)
            sock = self.connect_once()
            self._sock = sock
            self._resend.size_send_buffer(sock, largest_chunk, new_socket=True)
            for chunk, chunk_count in replay:
                self._sendall(sock, chunk)
                self.replayed += chunk_count
            if payload:
                self._sendall(sock, payload)
                if current_started:
                    self.replayed += count

        try:
            self._retrying(self.max_reconnects)(reconnect_and_replay)
        except OSError as exc:
            self._discard_socket(graceful=False)
            raise QRadarDeliveryError(
                f"lost the connection to QRadar at {self.address} ({cause}) and gave up after "
                f"{attempts} reconnect attempts: {self.explain(exc)}"
            ) from exc
        if not self.receipts:
            # Without receipts the replayed chunks count as delivered now (bounding the duplicates of a next drop).
            self._resend.clear()
        self.reconnects += 1
        self.possibly_duplicated += at_risk
        log.warning("receiver connection dropped; re-sent %d events that may be duplicated", at_risk)
