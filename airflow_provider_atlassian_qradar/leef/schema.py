"""The LEEF schema: header constants, the keys the encoder may emit, and the members an event is known to have."""

from __future__ import annotations

import re
from typing import Any

LEEF_VENDOR = "Atlassian"
LEEF_PRODUCT = "Organization Audit Log"
# The TAB delimiter is declared in IBM's hex form; a literal TAB in the header slot breaks parsers.
DELIMITER_FIELD = "x09"
EVENT_ID_MAX_CHARS = 255
MIN_MAX_BYTES = 512
# IBM limits usrName/accountName to 255; the same cap on every string core value keeps header + core bounded.
CORE_VALUE_MAX_BYTES = 255

CORE_KEYS: tuple[str, ...] = ("devTime", "cat", "sev", "eventId", "actorId", "usrName", "accountName", "src")

# Fixed custom keys in emission order (after the core keys); containerN*/contextN* and extra follow them.
FIXED_CUSTOM_KEYS: tuple[str, ...] = (
    "eventTime",
    "eventTimeRaw",
    "processedAt",
    "processedAtRaw",
    "eventIdRaw",
    "actorIdRaw",
    "usrNameRaw",
    "accountNameRaw",
    "srcRaw",
    "actionRaw",
    "eventType",
    "orgId",
    "actionGroup",
    "msg",
    "msgFormat",
    "country",
    "region",
    "city",
    "geo",
    "authType",
    "tokenId",
    "tokenLabel",
    "onBehalfOfId",
    "onBehalfOfName",
    "onBehalfOfEmail",
    "appId",
    "appType",
    "appAttributes",
    "actorLinkSelf",
    "actorLinkAlt",
    "actorPicture",
    "eventLink",
)
#: The key suffixes of the N-th item of ``attributes.container`` / ``attributes.context``, in emission order.
OBJECT_FIELDS: tuple[str, ...] = ("Id", "Type", "Name", "LinkSelf", "LinkAlt", "Attributes")

#: Every key with a fixed name that :func:`format_event` can emit (containerN*/contextN* keys are in
#: :data:`DYNAMIC_KEY_PATTERN`).
SCHEMA_KEYS: frozenset[str] = frozenset((*CORE_KEYS, *FIXED_CUSTOM_KEYS, "extra", "truncated"))
#: The keys for the N-th (1-based) item of ``attributes.container`` and ``attributes.context``.
DYNAMIC_KEY_PATTERN: re.Pattern[str] = re.compile(
    r"(?:container|context)[1-9][0-9]*(?:" + "|".join(OBJECT_FIELDS) + r")\Z"
)


def is_schema_key(key: str) -> bool:
    """
    Tell whether ``key`` belongs to the documented schema (fixed keys or containerN*/contextN* keys).

    :param key: an attribute key.
    :return: True if :func:`format_event` may emit it.
    """
    return key in SCHEMA_KEYS or DYNAMIC_KEY_PATTERN.match(key) is not None


# The members each object of an audit event is known to have; any other member goes to ``extra``.
TOP_KEYS = frozenset(("id", "type", "attributes", "links", "message"))
ATTRIBUTE_KEYS = frozenset(("time", "processedAt", "action", "actor", "context", "container", "location"))
ACTOR_KEYS = frozenset(("id", "name", "email", "auth", "onBehalfOf", "app", "links", "picture"))
AUTH_KEYS = frozenset(("authType", "tokenId", "tokenLabel"))
ON_BEHALF_KEYS = frozenset(("id", "name", "email"))
APP_KEYS = frozenset(("id", "type", "attributes"))
LINK_KEYS = frozenset(("self", "alt"))
EVENT_LINK_KEYS = frozenset(("self",))
MESSAGE_KEYS = frozenset(("content", "format"))
LOCATION_KEYS = frozenset(("ip", "countryName", "regionName", "city", "geo"))
OBJECT_KEYS = frozenset(("id", "type", "attributes", "links"))
#: Stands in for an absent or non-object member, so the encoder reads it like any other object.
EMPTY: dict[str, Any] = {}
