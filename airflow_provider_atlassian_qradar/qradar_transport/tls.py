"""TLS for QRadar: the client context (CA pinning, client certificates), certificate diagnostics, the TLS sender."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import tempfile
from collections.abc import Iterator
from typing import Any

from airflow_provider_atlassian_qradar.qradar_transport.syslog import SyslogFormatter
from airflow_provider_atlassian_qradar.qradar_transport.tcp import TcpSender

_PEM_MARKER = "-----BEGIN"


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
