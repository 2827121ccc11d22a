"""
Event senders that hand framed LEEF events to QRadar over TCP, TLS, UDP or the HTTP Receiver.

Pure code: no Airflow import, so it can be tested and benchmarked without Airflow. Every sender is a context
manager with the same :class:`EventSender` interface; ``hooks.qradar.QRadarHook`` builds the right one from an
Airflow connection.

Delivery over TCP and TLS is at-least-once with a receipt. Plain syslog has no acknowledgement, so
:meth:`TcpSender.confirm` makes one out of TCP itself: it half-closes the connection and waits for the receiver
to close its side. A receiver closes cleanly (FIN) only after its application has read every byte (a close with
unread data sends a reset instead), and the sender also checks that the kernel has no unacknowledged byte left.
After a drop the sender reconnects and re-sends everything since the last receipt; the operator asks for a receipt
after every page, so at most one page is sent twice and nothing is lost. A receiver that does not close within
``write_timeout`` of end-of-data gives no receipt, and that is a failure (:class:`QRadarDeliveryError`), never a
silent switch to no receipts: a receiver that stopped reading looks exactly the same from here, and moving on would
lose what sits unread in its buffers. Only ``confirm_delivery=False``, set knowingly for a receiver that keeps
connections open, sends without receipts (re-sending a replay window of recent bytes after a drop, best effort).
The HTTP Receiver acknowledges each batch itself.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import errno
import fcntl
import itertools
import logging
import os
import select
import socket
import ssl
import struct
import tempfile
import termios
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from airflow_provider_atlassian_qradar.syslog import SyslogFormatter

log = logging.getLogger(__name__)

#: One event for :meth:`EventSender.send`: the LEEF line and its event time in epoch milliseconds (or None).
Record = tuple[str, "int | None"]

_PEM_MARKER = "-----BEGIN"
#: Floor for the kernel send buffer we request (the kernel doubles the value for its bookkeeping).
_MIN_SEND_BUFFER_BYTES = 4 * 1024


#: Bytes of recent frames re-sent after a TCP/TLS drop, for what the receiver had accepted but not yet read.
#: Used only without receipts (``confirm_delivery=False``, or a receiver that does not close after end-of-data).
DEFAULT_RECEIVER_BUFFER_BYTES = 256 * 1024
#: With receipts, ``send`` asks for one by itself once this many bytes are unconfirmed (bounds the replay memory
#: for callers that never call ``confirm``).
MAX_UNCONFIRMED_BYTES = 8 * 1024 * 1024


class _WriteTimeout(TimeoutError):
    """A write (or the wait for a receipt) to a connected receiver timed out: it accepted but did not read."""


class QRadarDeliveryError(Exception):
    """Events could not be handed to QRadar; the message names the cause and what to check.

    :param permanent: True when retrying cannot help until someone changes the configuration (a rejected
        certificate, an HTTP 4xx); the operator then fails the task without using up its retries.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _batched(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


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


def _unacknowledged_bytes(sock: socket.socket) -> int:
    """Bytes written to a TCP socket that the peer has not acknowledged (Linux ``SIOCOUTQ``; 0 if unknown)."""
    try:
        packed = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, AttributeError):
        return 0
    return int(struct.unpack("i", packed)[0])


def _is_pem_text(value: str) -> bool:
    return _PEM_MARKER in value


@contextlib.contextmanager
def _pem_path(value: str, what: str, *, secret: bool = False) -> Iterator[str]:
    """
    Yield a file path for a PEM value given as text or as a path.

    PEM text goes to a 0600 temporary file that exists only inside the ``with`` block, because
    :meth:`ssl.SSLContext.load_cert_chain` reads files only.
    """
    if _is_pem_text(value):
        fd, path = tempfile.mkstemp(prefix="qradar-", suffix=".pem")  # mkstemp creates the file 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii", errors="strict") as handle:
                handle.write(value)
            yield path
        finally:
            os.unlink(path)
        return
    if not os.path.isfile(value):
        shown = "" if secret else f" {value!r}"
        raise ValueError(
            f"{what}{shown} is neither PEM text (-----BEGIN ...) nor a readable file path: "
            f"paste the PEM text into the connection extra or give the path of the file on the worker"
        )
    yield value


def build_ssl_context(
    *,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    key_passphrase: str | None = None,
    verify: bool = True,
) -> ssl.SSLContext:
    """
    Build the client TLS context for TLS syslog and the HTTPS Receiver.

    With ``ca_cert`` only that CA is trusted (pin the CA that issued QRadar's listener certificate); without it
    the system CA store is used. TLS 1.2 is the minimum.

    :param ca_cert: PEM text or path of the CA certificate(s) to trust.
    :param client_cert: PEM text or path of the client certificate (TLS with client authentication).
    :param client_key: PEM text or path of the client private key; text is written to a 0600 temporary file
        only while it is loaded.
    :param key_passphrase: passphrase of an encrypted ``client_key``.
    :param verify: verify the server certificate and host name; ``False`` is an explicit, insecure opt-in.
    :raises ValueError: when a certificate or key cannot be loaded; the message never contains key material.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False  # explicit opt-in
        context.verify_mode = ssl.CERT_NONE  # explicit opt-in
    if ca_cert:
        try:
            if _is_pem_text(ca_cert):
                context.load_verify_locations(cadata=ca_cert)
            else:
                with _pem_path(ca_cert, "ca_cert") as path:
                    context.load_verify_locations(cafile=path)
        except ssl.SSLError as exc:
            raise ValueError(
                f"ca_cert could not be loaded ({exc.reason or exc}): give the PEM certificate of the CA that "
                "issued QRadar's listener certificate"
            ) from None
    elif verify:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if client_key and not client_cert:
        raise ValueError("client_key is set but client_cert is not: give both for TLS client authentication")
    if client_cert:
        try:
            with contextlib.ExitStack() as stack:
                cert_path = stack.enter_context(_pem_path(client_cert, "client_cert"))
                key_path = stack.enter_context(_pem_path(client_key, "client_key", secret=True)) if client_key else None
                context.load_cert_chain(cert_path, key_path, password=key_passphrase or None)
        except ssl.SSLError:
            # Raised without the original chain: OpenSSL messages here never help and must not carry key bytes.
            raise ValueError(
                "client_cert/client_key could not be loaded: check that both are PEM, that the key belongs to "
                "the certificate, and that the connection password is the key's passphrase (if it has one)"
            ) from None
    return context


def describe_server_certificate(host: str, port: int, timeout: float = 10.0) -> str:
    """
    Fetch the server certificate without verifying it and describe it (subject, issuer, validity, names).

    Used only to explain a failed verification; nothing is sent over this connection.
    """
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False  # explicit opt-in: diagnostics only, no data is sent
    probe.verify_mode = ssl.CERT_NONE  # explicit opt-in: diagnostics only, no data is sent
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            probe.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        return f"(could not fetch it: {exc})"
    if not der:
        return "(the server sent no certificate)"
    try:
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID
    except ImportError:  # pragma: no cover - cryptography ships with Airflow
        return "(install 'cryptography' to see its subject and issuer)"
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = [str(name.value) for name in san]  # type: ignore[attr-defined]
    return (
        f"subject '{cert.subject.rfc4514_string()}', issuer '{cert.issuer.rfc4514_string()}', "
        f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}, "
        f"names {names or 'none'}"
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


class TcpSender(EventSender):
    """
    Send syslog-framed LEEF events over TCP, in chunks of ``batch_size`` events per ``sendall``.

    Before each chunk the socket is checked (without blocking) for a peer close or reset. On a drop before or
    during a write the sender reconnects with exponential backoff and jitter, re-sends every chunk since the last
    receipt (:meth:`confirm`) and the current chunk from its start, and logs a warning. It gives up after
    ``max_reconnects`` attempts with :class:`QRadarDeliveryError`. So duplicates after a drop are bounded by what
    was sent since the last receipt: one page when the caller confirms every page, as the operator does.

    :meth:`confirm` ends the connection to get its receipt (the next ``send`` opens a new one): about 1 ms on
    loopback, one to three round trips on a network. A receiver that does not close within ``write_timeout``
    makes ``confirm`` raise (no receipt is a failure). Without receipts (``confirm_delivery=False`` only) the
    replay after a drop is a window of the newest
    ``receiver_buffer_bytes`` plus the kernel send buffer, which is kept at about one chunk: best effort, since
    what a crashing receiver had accepted but not read is beyond any window.

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
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if receiver_buffer_bytes < 0:
            raise ValueError(f"receiver_buffer_bytes must be 0 or more, got {receiver_buffer_bytes}")
        if max_reconnects < 0:
            raise ValueError(f"max_reconnects must be 0 or more, got {max_reconnects}")
        self.host = host
        self.port = int(port)
        self.formatter = formatter
        self.batch_size = batch_size
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.max_reconnects = max_reconnects
        self.reconnect_backoff = reconnect_backoff
        self.receiver_buffer_bytes = receiver_buffer_bytes
        self.confirm_delivery = confirm_delivery
        #: Whether receipts are asked for (``confirm_delivery``); without them the replay window applies.
        self.receipts = confirm_delivery
        self._sock: socket.socket | None = None
        # Chunks the receiver may not have read: since the last receipt, or the replay window without receipts.
        self._recent: collections.deque[tuple[bytes, int]] = collections.deque()
        self._unconfirmed_bytes = 0
        self._receipt_requested = False
        self._send_buffer_request = 0
        self._send_buffer_bytes = 0

    @property
    def address(self) -> str:
        """``host:port`` as shown in messages."""
        return f"{self.host}:{self.port}"

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
        first, longest = self.reconnect_backoff
        return Retrying(
            stop=stop_after_attempt(max(attempts, 1)),
            wait=wait_exponential(multiplier=first, max=longest) + wait_random(0, first),
            retry=retry_if_exception(_is_transient),
            before_sleep=lambda state: log.info(
                "QRadar at %s: attempt %d failed (%s); retrying",
                self.address,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "?",
            ),
            reraise=True,
        )

    def explain(self, exc: BaseException) -> str:
        """Turn a connection error into a message that names the cause and what to check."""
        if isinstance(exc, ConnectionRefusedError):
            return (
                f"QRadar at {self.address} refused the connection: is the log source listening on that port / "
                "is the firewall open?"
            )
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve QRadar host {self.host!r} ({exc.strerror}): check the connection's host and DNS"
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
        if not self._receipt_requested:
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
            if graceful and self.receipts and self._recent:
                log.warning(
                    "QRadar at %s: no clean close (%s): the events sent since the last receipt may be lost",
                    self.address,
                    exc,
                )
            else:
                log.debug("QRadar at %s: no clean close (%s)", self.address, exc)
        finally:
            self._receipt_requested = False
            sock.close()

    def close(self) -> None:
        """Flush: half-close, wait (up to ``write_timeout``) for the receiver to read everything, then close."""
        self._discard_socket(graceful=True)

    def request_receipt(self) -> None:
        """Half-close now, so the receiver reads the rest while the caller works; :meth:`confirm` waits."""
        if not (self.receipts and self._recent and self._sock is not None) or self._receipt_requested:
            return
        if not self._can_half_close_early:
            return
        try:
            self._half_close(self._sock)
        except OSError as exc:  # the receiver is gone: confirm() finds out and re-sends
            log.debug("QRadar at %s: half-close failed (%s)", self.address, exc)
        self._receipt_requested = True

    def confirm(self) -> bool:
        """
        Get a receipt for everything sent since the last one: half-close, and wait for the receiver to close.

        A clean close (FIN, not a reset) with no byte left unacknowledged means the receiver's application read
        all of it. A receiver that is shutting down or crashing also closes cleanly once it has read everything,
        but may not have processed what it read; so the sender reconnects at once (the connection the next
        ``send`` uses), and if the receiver is gone by then, the receipt does not count. Whenever the receipt
        fails (reset, unacknowledged bytes, receiver gone), the unconfirmed chunks are re-sent on a new
        connection and the receipt is asked for again.

        :return: True with a receipt; False without receipts (``confirm_delivery=False``).
        :raises QRadarDeliveryError: if the receiver does not close within ``write_timeout`` of end-of-data (no
            receipt: a failure, never a silent downgrade), or cannot be reached again within ``max_reconnects``.
        """
        if not self.receipts:
            return False
        for _ in range(self.max_reconnects + 1):
            if not self._recent:
                return True  # nothing sent since the last receipt
            sock, self._sock = self._sock, None
            if sock is None:  # dropped earlier: reconnect and re-send first
                self._recover(None, 0, ConnectionResetError(errno.ECONNRESET, "no open connection"), False)
                continue
            try:
                self._await_receipt(sock)
            except TimeoutError:
                # No receipt: the receiver may have stopped reading (the events sit unread in its buffers and die
                # with it) or may never close at end-of-data. Both look the same from here, so this is a failure:
                # the caller's checkpoint stays before these events and a retry re-sends them.
                unacknowledged = _unacknowledged_bytes(sock)
                raise QRadarDeliveryError(
                    f"QRadar at {self.address} gave no receipt: the wait for it to close the connection after "
                    f"end-of-data timed out after {self.write_timeout:g}s (write_timeout), with "
                    f"{self._unconfirmed_bytes:,} bytes unconfirmed ({unacknowledged:,} not even acknowledged by its "
                    "TCP stack). Either the receiver stopped reading (check its health; the task retry re-sends "
                    "these events) or it never closes connections at end-of-data: then set the connection extra "
                    "confirm_delivery to false, knowing that a dropped connection can then lose or repeat the "
                    "events in flight"
                ) from None
            except OSError as exc:
                log.warning("QRadar at %s closed before reading everything (%s); re-sending", self.address, exc)
                self._recover(None, 0, exc, False)
                continue
            finally:
                self._receipt_requested = False
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
                self._recover(None, 0, exc, False)
                continue
            self._recent.clear()
            self._unconfirmed_bytes = 0
            return True
        raise QRadarDeliveryError(
            f"QRadar at {self.address} dropped the connection {self.max_reconnects + 1} times before reading "
            "the events sent since the last receipt: check the receiver's health and logs"
        )

    def _await_receipt(self, sock: socket.socket) -> None:
        """Half-close and wait for a clean close; raise ``ConnectionResetError`` if not everything was read."""
        raw = self._graceful_shutdown(sock)
        unacknowledged = _unacknowledged_bytes(raw)
        if unacknowledged:
            # The receiver closed before our last bytes reached it (they were answered with a reset).
            raise ConnectionResetError(
                errno.ECONNRESET, f"the receiver closed with {unacknowledged} bytes unacknowledged"
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
        for chunk in _batched(records, self.batch_size):
            if self._receipt_requested or (self.receipts and self._unconfirmed_bytes >= MAX_UNCONFIRMED_BYTES):
                self.confirm()
            self.open()
            payload = b"".join([frame(line, event_time_ms) for line, event_time_ms in chunk])
            self._write_chunk(payload, len(chunk))
            handed += len(chunk)
            self.delivered += len(chunk)
        return handed

    def _size_send_buffer(self, sock: socket.socket, chunk_bytes: int) -> None:
        """Without receipts, keep the kernel send buffer at about one chunk, so a drop can only lose what we replay."""
        if self.receipts:
            return  # everything since the last receipt is replayed anyway: let the kernel autotune for throughput
        wanted = max(_MIN_SEND_BUFFER_BYTES, chunk_bytes // 2)
        if wanted == self._send_buffer_request:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, wanted)
            self._send_buffer_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            self._send_buffer_request = wanted
        except OSError as exc:  # e.g. a socket already reset: the next write reports it
            log.debug("could not size the send buffer: %s", exc)

    def _remember(self, payload: bytes, count: int) -> None:
        """Keep the chunk for a replay: until the next receipt, or within the replay window without receipts."""
        self._recent.append((payload, count))
        self._unconfirmed_bytes += len(payload)
        if not self.receipts:
            self._trim_to_window()

    def _trim_to_window(self) -> None:
        """Keep the newest chunks that cover both socket buffers (what a reset can discard unread)."""
        window = self._send_buffer_bytes + self.receiver_buffer_bytes
        while len(self._recent) > 1 and self._unconfirmed_bytes - len(self._recent[0][0]) >= window:
            self._unconfirmed_bytes -= len(self._recent.popleft()[0])

    def _write_chunk(self, payload: bytes, count: int) -> None:
        sock = self._sock
        cause: BaseException | None = None
        current_started = False
        if sock is None:
            cause = ConnectionResetError(errno.ECONNRESET, "no open connection after an earlier failure")
        elif self._peer_dropped(sock):
            cause = ConnectionResetError(errno.ECONNRESET, "the receiver closed the connection")
        else:
            self._size_send_buffer(sock, len(payload))
            try:
                self._sendall(sock, payload)
            except OSError as exc:  # BrokenPipe, ConnectionReset, timeout, TLS errors
                cause = exc
                current_started = True
        if cause is not None:
            self._recover(payload, count, cause, current_started)
        self._remember(payload, count)

    def _sendall(self, sock: socket.socket, data: bytes) -> None:
        """``sendall`` whose timeout says it was a write to a connected receiver, not a connect."""
        try:
            sock.sendall(data)
        except TimeoutError:
            raise _WriteTimeout(f"a write of {len(data):,} bytes timed out") from None

    def _recover(self, payload: bytes | None, count: int, cause: BaseException, current_started: bool) -> None:
        """Reconnect and re-send the chunks the receiver may not have read, then ``payload`` (if any)."""
        replay = list(self._recent)
        replay_count = sum(chunk_count for _, chunk_count in replay)
        at_risk = replay_count + (count if current_started else 0)
        log.warning("connection to QRadar at %s dropped (%s); reconnecting", self.address, cause)
        self._discard_socket(graceful=False)

        attempts = 0

        def reconnect_and_replay() -> None:
            nonlocal attempts
            attempts += 1
            self._discard_socket(graceful=False)
            sock = self.connect_once()
            self._sock = sock
            self._send_buffer_request = 0
            self._size_send_buffer(sock, len(payload) if payload else max((len(c) for c, _ in replay), default=0))
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
            self._recent.clear()
            self._unconfirmed_bytes = 0
        self.reconnects += 1
        self.possibly_duplicated += at_risk
        log.warning("receiver connection dropped; re-sent %d events that may be duplicated", at_risk)


class TlsSender(TcpSender):
    """
    Send syslog-framed LEEF events over TLS (QRadar's TLS Syslog listener, port 6514 by default).

    Same chunking, drop detection and reconnect behaviour as :class:`TcpSender`.

    :param ssl_context: client context, usually from :func:`build_ssl_context`.
    :param server_hostname: name to verify the certificate against (and send as SNI); defaults to ``host``.
    """

    transport_name = "TLS"
    _can_half_close_early = False

    def __init__(
        self,
        host: str,
        port: int,
        formatter: SyslogFormatter,
        *,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(host, port, formatter, **kwargs)
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or host

    def _wrap(self, sock: socket.socket) -> socket.socket:
        return self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)

    def explain(self, exc: BaseException) -> str:
        """Name the certificate problem (with the server certificate's subject and issuer) or defer to TCP."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            certificate = describe_server_certificate(self.host, self.port, self.connect_timeout)
            return (
                f"TLS verification of QRadar at {self.address} failed: {exc.verify_message.rstrip('.')}. "
                "Server certificate: "
                f"{certificate}. Set ca_cert to the CA that issued it, connect with a name the certificate lists, "
                "or renew an expired certificate"
            )
        if isinstance(exc, ssl.SSLError):
            return (
                f"TLS handshake with QRadar at {self.address} failed ({exc.reason or exc}): check that the port "
                "is a TLS syslog listener and, with client authentication, that QRadar accepts client_cert"
            )
        return super().explain(exc)

    def _graceful_shutdown(self, sock: socket.socket) -> socket.socket:
        assert isinstance(sock, ssl.SSLSocket)
        try:
            raw = sock.unwrap()  # sends close_notify and reads what the server still sends (session tickets)
        except ssl.SSLEOFError:
            return sock  # the receiver closed TCP without answering close_notify: still a clean close (FIN)
        return super()._graceful_shutdown(raw)

    def _peer_dropped(self, sock: socket.socket) -> bool:
        # A raw peek would see TLS 1.3 session tickets, not the close: read through TLS without blocking instead.
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not readable:
            return False
        sock.settimeout(0)
        try:
            return sock.recv(65536) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(self.write_timeout)


class UdpSender(EventSender):
    """
    Send one syslog datagram per event (no framing: the datagram is the message).

    .. warning:: UDP gives no delivery signal. Events are lost silently when the network or QRadar drops
       datagrams, and QRadar may truncate long ones. Prefer TCP or TLS.

    :param host: QRadar event collector host name or IP.
    :param port: syslog UDP port (514 by default).
    :param formatter: the syslog header to apply (its framing is ignored).
    """

    _warned = False

    def __init__(self, host: str, port: int, formatter: SyslogFormatter) -> None:
        super().__init__()
        self.host = host
        self.port = int(port)
        self.formatter = formatter
        self._sock: socket.socket | None = None

    def open(self) -> None:
        """Resolve the host and create a connected UDP socket."""
        if self._sock is not None:
            return
        if not UdpSender._warned:
            log.warning("sending to QRadar over UDP: datagrams can be lost without any error; prefer tcp or tls")
            UdpSender._warned = True
        try:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise QRadarDeliveryError(
                f"cannot resolve QRadar host {self.host!r} ({exc.strerror}): check the connection's host and DNS"
            ) from exc
        sock = socket.socket(family, kind, proto)
        sock.connect(address)
        self._sock = sock

    def close(self) -> None:
        """Close the socket."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def send(self, records: Iterable[Record]) -> int:
        """
        Send one datagram per event.

        :return: number of datagrams handed to the kernel by this call.
        :raises QRadarDeliveryError: when the kernel reports the port unreachable (nothing listens on it).
        """
        self.open()
        assert self._sock is not None
        sock_send, message = self._sock.send, self.formatter.message
        handed = 0
        try:
            for line, event_time_ms in records:
                sock_send(message(line, event_time_ms))
                handed += 1
        except ConnectionRefusedError as exc:
            raise QRadarDeliveryError(
                f"QRadar at {self.host}:{self.port} answered 'port unreachable' to UDP: no log source listens "
                f"there; check the port and protocol (events sent so far may be lost)"
            ) from exc
        finally:
            self.delivered += handed
        return handed


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
        for chunk in _batched(records, self.batch_size):
            lines = [line for line, _ in chunk]
            for line in lines:
                if "\n" in line or "\r" in line:
                    raise ValueError(
                        "LEEF line contains a CR or LF: the HTTP Receiver would split it into two events; "
                        "escape the value in the LEEF encoder"
                    )
            handed += self._post_lines(lines)
        return handed

    def _post_once(self, body: bytes, count: int) -> requests.Response:
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
        first, longest = self.retry_backoff
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.replayed += len(lines)
            return self._post_once(body, len(lines))

        try:
            response = Retrying(
                stop=stop_after_attempt(self.retries),
                wait=wait_exponential(multiplier=first, max=longest) + wait_random(0, first),
                retry=retry_if_exception(_retryable_http),
                before_sleep=lambda state: log.warning(
                    "QRadar HTTP Receiver at %s: attempt %d failed (%s); retrying",
                    self.url,
                    state.attempt_number,
                    state.outcome.exception() if state.outcome else "?",
                ),
                reraise=True,
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
