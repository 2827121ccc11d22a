"""LeefOptions: the per-deployment encoder arguments, validated once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_atlassian_qradar import __version__
from airflow_provider_atlassian_qradar.leef.budget import check_max_bytes
from airflow_provider_atlassian_qradar.leef.categories import clamp_severity
from airflow_provider_atlassian_qradar.leef.encoder import encode
from airflow_provider_atlassian_qradar.leef.header import header_prefix
from airflow_provider_atlassian_qradar.leef.timefmt import resolve_zone


class LeefOptions:
    """
    The per-deployment arguments of :func:`format_event`, bundled so callers validate them once.

    :param action_group_names: action id -> the organization's group display name (``groupDisplayName`` from
        /event-actions), written to ``actionGroup``; it never changes ``cat``.
    :param severity_overrides: action id -> sev; clamped to 1..10.
    :param time_zone: IANA zone for the human-readable timestamps (eventTime, processedAt).
    :param max_bytes: budget for the LEEF line alone, in UTF-8 bytes (the syslog header not included).
    :param org_id: the organization id written to orgId.
    :param product_version: the Version header field.
    """

    __slots__ = ("action_group_names", "max_bytes", "org_id", "product_version", "severity_overrides", "time_zone")

    def __init__(
        self,
        *,
        action_group_names: Mapping[str, str] | None = None,
        severity_overrides: Mapping[str, int] | None = None,
        time_zone: str = "UTC",
        max_bytes: int = 4096,
        org_id: str | None = None,
        product_version: str = __version__,
    ) -> None:
        self.action_group_names = dict(action_group_names) if action_group_names else None
        self.severity_overrides = dict(severity_overrides) if severity_overrides else None
        self.time_zone = time_zone
        self.max_bytes = max_bytes
        self.org_id = org_id
        self.product_version = product_version
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad setting; run once at start-up rather than per event."""
        check_max_bytes(self.max_bytes)
        resolve_zone(self.time_zone)
        header_prefix(self.product_version)
        for action, name in (self.action_group_names or {}).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"action_group_names[{action!r}] is {name!r}: use a non-empty string")
        for action, severity in (self.severity_overrides or {}).items():
            clamp_severity(severity, action)

    def format(self, event: Mapping[str, Any]) -> str:
        """
        Encode one event with these options.

        :param event: one audit event as decoded from the Atlassian API.
        :return: the LEEF line (no trailing newline).
        """
        return self.encode(event)[0]

    def encode(self, event: Mapping[str, Any]) -> tuple[str, bool]:
        """
        Encode one event with these options and tell whether the frame budget trimmed it.

        :param event: one audit event as decoded from the Atlassian API.
        :return: (the LEEF line, True if values were cut or dropped to fit ``max_bytes``).
        """
        return encode(
            event,
            self.action_group_names,
            self.severity_overrides,
            self.time_zone,
            self.max_bytes,
            self.org_id,
            self.product_version,
        )
