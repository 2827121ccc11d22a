"""The provider's two connections as ``AIRFLOW_CONN_*`` values (JSON), pointed at a simulator and a local receiver."""

from __future__ import annotations

import json
from typing import Any

ATLASSIAN_CONN_VAR = "AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT"
QRADAR_CONN_VAR = "AIRFLOW_CONN_QRADAR_DEFAULT"


def atlassian_connection(host: str, org_id: str, api_key: str, **extra: Any) -> str:
    """An ``atlassian_admin`` connection: the API base URL, the organization as login, the key as password.

    :param extra: connection extras (e.g. ``page_size``); the connection has none when there are none.
    """
    conn: dict[str, Any] = {"conn_type": "atlassian_admin", "host": host, "login": org_id, "password": api_key}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def qradar_connection(
    port: int, protocol: str = "tcp", *, host: str = "127.0.0.1", password: str | None = None, **extra: Any
) -> str:
    """A ``qradar`` connection to a receiver on ``host:port``.

    :param password: the connection password (the TLS client key's passphrase).
    :param extra: connection extras besides ``protocol`` (e.g. ``batch_size``).
    """
    conn: dict[str, Any] = {"conn_type": "qradar", "host": host, "port": port}
    if password:
        conn["password"] = password
    conn["extra"] = {"protocol": protocol, **extra}
    return json.dumps(conn)
