"""Checks of the connection's Organization ID, API key and base URL before any request. Pure code."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from airflow_provider_atlassian_qradar.atlassian_api.guard import format_origin, is_loopback_host, origin
from airflow_provider_atlassian_qradar.connection_fields import DEFAULT_ATLASSIAN_BASE_URL, ConnectionConfigError

log = logging.getLogger(__name__)

#: Atlassian organization ids are UUIDs; allow any id of letters, digits, dashes and underscores.
_ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_HTTP_SCHEMES = ("https", "http")


def base_url_of(host: str | None, port: int | None) -> str:
    """The API base URL from the connection's host and port: https by default, a port in the URL wins."""
    url = (host or DEFAULT_ATLASSIAN_BASE_URL).strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if port and urlsplit(url).port is None:
        url = f"{url}:{port}"
    return url


def check_api_key(key: str, conn_id: str) -> None:
    """Refuse a key with whitespace or control characters before any request (e.g. a newline pasted from a file).

    requests would refuse the header with an error that quotes it, and Airflow's masker matches only the exact
    key: the message would show the key in clear text. The message names the field, never the key.
    """
    if all(0x21 <= ord(char) <= 0x7E for char in key):
        return
    if key != key.strip():
        problem = "leading or trailing whitespace (often a newline pasted from a file)"
    elif any(char.isspace() for char in key):
        problem = "whitespace inside it"
    elif any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        problem = "control characters"
    else:
        problem = "non-ASCII characters"
    raise ConnectionConfigError(
        f"connection {conn_id!r}: the API key (password field) has {problem}; an organization API key is a "
        "single line of printable ASCII: paste it again without them",
    )


def check_org_id(org_id: str, conn_id: str) -> None:
    """Refuse an Organization ID that would change the request path (``../``, ``?``, ``#``, ``/``, spaces)."""
    if _ORG_ID.fullmatch(org_id):
        return
    raise ConnectionConfigError(
        f"connection {conn_id!r}: the Organization ID (login field) {org_id[:80]!r} is not an organization id: "
        "use the id shown in admin.atlassian.com > Settings > API keys (letters, digits and dashes, e.g. "
        "a UUID); characters such as '/', '?', '#' or '..' are not allowed",
    )


def check_base_url(base_url: str, conn_id: str, allow_insecure_http: bool) -> None:
    """Accept https, and http only to a loopback host or with the explicit ``allow_insecure_http`` opt-in."""
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in _HTTP_SCHEMES or not host:
        raise ConnectionConfigError(
            f"connection {conn_id!r}: the API base URL (host field) {format_origin(origin(base_url))!r} is not an "
            f"http(s) URL: use {DEFAULT_ATLASSIAN_BASE_URL} (or leave the host empty)",
        )
    if scheme == "https" or is_loopback_host(host):
        return
    if not allow_insecure_http:
        raise ConnectionConfigError(
            f"connection {conn_id!r}: the API base URL {format_origin(origin(base_url))} is plain http to a host "
            "that is not loopback, so the API key would cross the network unencrypted: use https, or set the "
            'connection extra "allow_insecure_http": true if you really mean it (e.g. a TLS-terminating proxy on '
            "a trusted link)",
        )
    log.warning(
        "connection %r: sending the Atlassian API key over plain http to %s (allow_insecure_http is true): "
        "anyone on the path can read it",
        conn_id,
        format_origin(origin(base_url)),
    )
