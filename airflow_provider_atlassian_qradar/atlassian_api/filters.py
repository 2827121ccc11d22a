"""The audit log's search filters, as one value built once per read. Pure code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict


class FilterArguments(TypedDict, total=False):
    """The filter keyword arguments of :meth:`AtlassianAuditLogHook.iter_events` and ``iter_pages``."""

    query: str | None
    action: str | None
    actor: Sequence[str] | str | None
    ip: Sequence[str] | str | None
    product: Sequence[str] | str | None


@dataclass(frozen=True)
class EventFilters:
    """The ``/events`` filters of one read; any of them makes the read use ``/events`` instead of the stream.

    :param query: free-text search term (``q``).
    :param action: one action id from ``get_event_actions()``.
    :param actor: actor account ids.
    :param ip: IP addresses.
    :param product: product names, e.g. ``jira``.
    """

    query: str | None = None
    action: str | None = None
    actor: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    product: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        query: str | None = None,
        action: str | None = None,
        actor: Sequence[str] | str | None = None,
        ip: Sequence[str] | str | None = None,
        product: Sequence[str] | str | None = None,
    ) -> EventFilters:
        """Build the filters from keyword arguments: a single string is one value; empty values are dropped."""
        return cls(query or None, action or None, _values(actor), _values(ip), _values(product))

    def params(self) -> list[tuple[str, str]]:
        """The query parameters, re-sent with every cursor request of a filtered read."""
        params: list[tuple[str, str]] = []
        if self.query:
            params.append(("q", self.query))
        if self.action:
            params.append(("action", self.action))
        for name, values in (("actor", self.actor), ("ip", self.ip), ("product", self.product)):
            params.extend((name, value) for value in values)
        return params

    def __bool__(self) -> bool:
        return bool(self.query or self.action or self.actor or self.ip or self.product)


def _values(values: Sequence[str] | str | None) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    return tuple(value for value in values or () if value)
