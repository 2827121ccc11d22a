"""Guards for HTTP calls to an endpoint that may be hostile or broken: bounded time, bounded memory, no key leaks.

Pure code (no Airflow import), used by the Atlassian API client:

- :class:`RequestDeadline` and :class:`DeadlineAdapter`: a total deadline per request. requests' ``timeout`` bounds
  each socket read only, so a server that trickles a byte every few seconds never trips it; the deadline shuts the
  request's socket down when it expires, wherever the request is (connect, headers, body).
- :func:`read_capped_body`: reads a streamed response with a cap on the *decoded* size, decompressing gzip/deflate
  itself with a bounded output per step, so a gzip bomb costs at most the cap in memory.
- :class:`SecretScrubber`: removes a secret from any text in the forms a server or a library may echo it (raw,
  repr/JSON-escaped, URL-encoded, base64).
- :func:`origin`: a URL's normalised origin (scheme and host lower-case, default port elided).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import socket
import threading
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

#: Bytes read from the socket per step while streaming a body.
_READ_CHUNK_BYTES = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_current = threading.local()
#: Shorter secrets are not scrubbed: "wrong" would garble every message with the word. Organization API keys
#: are about 190 characters.
MIN_SCRUBBED_LENGTH = 8


class ResponseTooLarge(Exception):
    """The decoded response body is larger than the cap.

    :param limit: the cap in bytes.
    :param compressed: whether the body was compressed (a small download that decodes to more than the cap).
    """

    def __init__(self, limit: int, compressed: bool) -> None:
        how = "decompresses to" if compressed else "is"
        super().__init__(f"the response body {how} more than {limit:,} bytes")
        self.limit = limit
        self.compressed = compressed


class UnsupportedEncoding(Exception):
    """The server used a ``Content-Encoding`` we did not offer and cannot decode with a bounded output."""


class RequestDeadline:
    """A total time budget for one request, enforced by shutting its sockets down when it runs out.

    Use :meth:`armed` around the request; connections the :class:`DeadlineAdapter` hands out meanwhile are
    watched. After expiry the request fails with a connection error or a short read; :attr:`expired` tells why.

    :param seconds: the budget, from :meth:`armed` on.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def watch(self, connection: Any) -> None:
        """Shut this urllib3 connection's socket down at expiry (at once if already expired)."""
        with self._lock:
            self._connections.append(connection)
            expired = self.expired
        if expired:
            _shutdown(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)

    @contextlib.contextmanager
    def armed(self) -> Iterator[RequestDeadline]:
        """Start the clock; connections opened or reused inside the block are watched; stop it on exit."""
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        previous = getattr(_current, "deadline", None)
        _current.deadline = self
        self._timer.start()
        try:
            yield self
        finally:
            self._timer.cancel()
            _current.deadline = previous


def _shutdown(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread


def _watch_current(connection: Any) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(connection)


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        _watch_current(connection)
        return connection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        connection = super()._get_conn(timeout)
        _watch_current(connection)
        return connection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections obey the :class:`RequestDeadline` armed in the calling thread."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        """Build the pool manager with watched connection pools (a new dict: the default one is shared)."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The same for requests through an HTTP(S) proxy (a SOCKS proxy keeps its own pools: not watched)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _WatchedHTTPConnectionPool,
    "https": _WatchedHTTPSConnectionPool,
}


def read_capped_body(response: requests.Response, limit: int) -> bytes:
    """Read a ``stream=True`` response's body, decoding gzip/deflate, and refuse more than ``limit`` decoded bytes.

    :param response: a response requested with ``stream=True`` (its content not read yet).
    :param limit: the largest decoded body accepted, in bytes.
    :raises ResponseTooLarge: as soon as the decoded body exceeds ``limit`` (the rest is not read).
    :raises UnsupportedEncoding: for a ``Content-Encoding`` other than gzip, deflate or identity.
    """
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    decoder: Any = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj(zlib.MAX_WBITS)
    elif encoding != "identity":
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} (only gzip and deflate are accepted)")
    declared = response.headers.get("Content-Length", "")
    if decoder is None and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(limit, compressed=False)
    body = bytearray()
    while True:
        chunk = response.raw.read(_READ_CHUNK_BYTES, decode_content=False)
        if not chunk:
            break
        if decoder is None:
            body += chunk
        else:
            # max_length bounds what one step may inflate to; the rest waits in unconsumed_tail.
            pending = chunk
            while pending and len(body) <= limit:
                body += decoder.decompress(pending, limit - len(body) + 1)
                pending = decoder.unconsumed_tail
        if len(body) > limit:
            raise ResponseTooLarge(limit, compressed=decoder is not None)
    if decoder is not None:
        body += decoder.flush()
        if len(body) > limit:
            raise ResponseTooLarge(limit, compressed=True)
    return bytes(body)


class SecretScrubber:
    """Replace a secret in any text, in every form it is likely to be echoed in.

    Forms: raw; Python repr / JSON escaped (a trailing newline shows as ``\\n``); URL-encoded (``%2B``, ``+``);
    base64 of the secret and of ``Bearer <secret>`` (a server echoing an encoded header); each form also with
    surrounding whitespace stripped (a pasted key with a newline still matches its visible part). Secrets shorter
    than :data:`MIN_SCRUBBED_LENGTH` are left alone.

    :param secret: the secret; an empty one scrubs nothing.
    :param replacement: what each occurrence becomes.
    """

    def __init__(self, secret: str | None, replacement: str = "***") -> None:
        self.replacement = replacement
        forms: set[str] = set()
        for value in {secret or "", (secret or "").strip()}:
            if len(value) < MIN_SCRUBBED_LENGTH:  # not a real key; replacing it would garble unrelated words
                continue
            forms.update(
                {
                    value,
                    repr(value)[1:-1],
                    json.dumps(value)[1:-1],
                    quote(value, safe=""),
                    quote_plus(value),
                    base64.b64encode(value.encode()).decode(),
                    base64.b64encode(f"Bearer {value}".encode()).decode(),
                    base64.urlsafe_b64encode(value.encode()).decode(),
                }
            )
        # Longest first, so a form that contains another is replaced whole.
        self.forms: tuple[str, ...] = tuple(sorted(forms, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """Return ``text`` with every form of the secret replaced."""
        for form in self.forms:
            if form in text:
                text = text.replace(form, self.replacement)
        return text


def origin(url: str) -> tuple[str, str, int | None]:
    """The origin of a URL: (scheme lower-case, host lower-case without brackets, port with the default elided).

    ``https://API.atlassian.com:443/x`` and ``https://api.atlassian.com`` have the same origin.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, host, port


def format_origin(parts: tuple[str, str, int | None]) -> str:
    """``scheme://host[:port]`` of an :func:`origin` tuple."""
    scheme, host, port = parts
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP literal (127.0.0.0/8, ::1); names are not resolved."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
