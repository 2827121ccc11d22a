"""
What the TCP/TLS sender keeps for a re-send after a dropped connection, and what the kernel says was acknowledged.

How a receipt works (half-close, wait for the receiver's clean close) is in docs/delivery.md; the sender in
:mod:`~airflow_provider_atlassian_qradar.qradar_transport.tcp` drives it.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import logging
import socket
import struct
import termios

log = logging.getLogger(__name__)

#: Bytes of recent frames re-sent after a TCP/TLS drop, for what the receiver had accepted but not yet read.
#: Used only without receipts (``confirm_delivery=False``).
DEFAULT_RECEIVER_BUFFER_BYTES = 256 * 1024
#: With receipts, ``send`` asks for one by itself once this many bytes are unconfirmed (bounds the replay memory
#: for callers that never call ``confirm``).
MAX_UNCONFIRMED_BYTES = 8 * 1024 * 1024
#: Floor for the kernel send buffer we request (the kernel doubles the value for its bookkeeping).
_MIN_SEND_BUFFER_BYTES = 4 * 1024


def unacknowledged_bytes(sock: socket.socket) -> int:
    """Bytes written to a TCP socket that the peer has not acknowledged (Linux ``SIOCOUTQ``; 0 if unknown)."""
    try:
        packed = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, AttributeError):
        return 0
    return int(struct.unpack("i", packed)[0])


def require_all_acknowledged(sock: socket.socket) -> None:
    """After the receiver closed: raise ``ConnectionResetError`` if it did so before acknowledging every byte."""
    unacknowledged = unacknowledged_bytes(sock)
    if unacknowledged:
        # The receiver closed before our last bytes reached it (they were answered with a reset).
        raise ConnectionResetError(errno.ECONNRESET, f"the receiver closed with {unacknowledged} bytes unacknowledged")


class ResendQueue:
    """
    The chunks the receiver may not have read, oldest first, each with its number of events.

    With receipts it keeps every chunk since the last receipt. Without receipts it keeps a replay window: the
    newest ``receiver_buffer_bytes`` plus the kernel send buffer, which :meth:`size_send_buffer` holds at about
    one chunk (best effort: what a crashing receiver had accepted but not read is beyond any window).

    :param receipts: whether the sender asks for receipts.
    :param receiver_buffer_bytes: without receipts only: bytes the receiver may have accepted but not read.
    """

    def __init__(self, receipts: bool, receiver_buffer_bytes: int) -> None:
        self.receipts = receipts
        self.receiver_buffer_bytes = receiver_buffer_bytes
        self.chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        #: Bytes in :attr:`chunks`.
        self.unconfirmed_bytes = 0
        self._send_buffer_request = 0
        self._send_buffer_bytes = 0

    def __bool__(self) -> bool:
        return bool(self.chunks)

    @property
    def full(self) -> bool:
        """With receipts: so much is unconfirmed that the sender should ask for a receipt before writing more."""
        return self.receipts and self.unconfirmed_bytes >= MAX_UNCONFIRMED_BYTES

    def remember(self, payload: bytes, count: int) -> None:
        """Keep a chunk just written: until the next receipt, or within the replay window without receipts."""
        self.chunks.append((payload, count))
        self.unconfirmed_bytes += len(payload)
        if not self.receipts:
            self._trim_to_window()

    def clear(self) -> None:
        """Forget every chunk: the receiver read them (a receipt), or without receipts they were re-sent."""
        self.chunks.clear()
        self.unconfirmed_bytes = 0

    def _trim_to_window(self) -> None:
        """Keep the newest chunks that cover both socket buffers (what a reset can discard unread)."""
        window = self._send_buffer_bytes + self.receiver_buffer_bytes
        while len(self.chunks) > 1 and self.unconfirmed_bytes - len(self.chunks[0][0]) >= window:
            self.unconfirmed_bytes -= len(self.chunks.popleft()[0])

    def size_send_buffer(self, sock: socket.socket, chunk_bytes: int, *, new_socket: bool = False) -> None:
        """Without receipts, keep the kernel send buffer at about one chunk, so a drop can only lose what we replay.

        :param new_socket: the socket was just opened, so an earlier request does not apply to it.
        """
        if self.receipts:
            return  # everything since the last receipt is replayed anyway: let the kernel autotune for throughput
        if new_socket:
            self._send_buffer_request = 0
        wanted = max(_MIN_SEND_BUFFER_BYTES, chunk_bytes // 2)
        if wanted == self._send_buffer_request:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, wanted)
            self._send_buffer_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            self._send_buffer_request = wanted
        except OSError as exc:  # e.g. a socket already reset: the next write reports it
            log.debug("could not size the send buffer: %s", exc)
