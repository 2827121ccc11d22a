"""LEEF 2.0 encoder for Atlassian organization audit events (pure Python, no Airflow import).

One call turns one event (the JSON object from ``/admin/v1/orgs/{org}/events`` or ``/events-stream``) into one
LEEF 2.0 line with a TAB delimiter. Keys come from a fixed schema (see the README's "LEEF mapping" section), never from
event data; values are escaped so that no event can forge a line, a key or a header field; the line always
fits ``max_bytes`` by trimming the least important values first.

This runs once per event at 10^5 events/s, so the hot path avoids regexes and per-call object creation:
most values take the ``isprintable()`` fast path and the line is built with one join.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_atlassian_qradar import __version__

__all__ = [
    "ACTION_CATEGORIES",
    "CORE_KEYS",
    "CORE_VALUE_MAX_BYTES",
    "DEFAULT_SEVERITY",
    "DYNAMIC_KEY_PATTERN",
    "LEEF_PRODUCT",
    "LEEF_VENDOR",
    "MIN_MAX_BYTES",
    "SCHEMA_KEYS",
    "LeefOptions",
    "escape_value",
    "format_event",
    "is_schema_key",
    "parse_leef",
    "sanitize_event_id",
    "unescape_value",
]

LEEF_VENDOR = "Atlassian"
LEEF_PRODUCT = "Organization Audit Log"
# The TAB delimiter is declared in IBM's hex form; a literal TAB in the header slot breaks parsers.
_DELIMITER_FIELD = "x09"
EVENT_ID_MAX_CHARS = 255
MIN_MAX_BYTES = 512
# IBM limits usrName/accountName to 255; the same cap on every string core value keeps header + core bounded.
CORE_VALUE_MAX_BYTES = 255
# The truncated= list names keys up to this many bytes, then counts the rest as "+N".
TRUNCATED_LIST_MAX_BYTES = 200

CORE_KEYS: tuple[str, ...] = ("devTime", "cat", "sev", "eventId", "actorId", "usrName", "accountName", "src")

# Fixed custom keys in emission order (after the core keys); containerN*/contextN* and extra follow them.
_FIXED_CUSTOM_KEYS: tuple[str, ...] = (
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
_OBJECT_FIELDS: tuple[str, ...] = ("Id", "Type", "Name", "LinkSelf", "LinkAlt", "Attributes")

#: Every key with a fixed name that :func:`format_event` can emit (containerN*/contextN* keys are in
#: :data:`DYNAMIC_KEY_PATTERN`).
SCHEMA_KEYS: frozenset[str] = frozenset((*CORE_KEYS, *_FIXED_CUSTOM_KEYS, "extra", "truncated"))
#: The keys for the N-th (1-based) item of ``attributes.container`` and ``attributes.context``.
DYNAMIC_KEY_PATTERN: re.Pattern[str] = re.compile(
    r"(?:container|context)[1-9][0-9]*(?:" + "|".join(_OBJECT_FIELDS) + r")\Z"
)

# Trim order under the frame budget: lower rank is trimmed first; core keys are never trimmed.
_TRIM_RANK: dict[str, int] = {
    "extra": 0,
    "appAttributes": 1,
    "msg": 2,
    "actorPicture": 3,
    "eventLink": 4,
    "actorLinkSelf": 4,
    "actorLinkAlt": 4,
    "country": 5,
    "region": 5,
    "city": 5,
    "geo": 5,
    "msgFormat": 5,
    "onBehalfOfName": 6,
    "tokenLabel": 6,
    "appType": 6,
    "actionGroup": 6,
    "eventTimeRaw": 7,
    "processedAtRaw": 7,
    "actionRaw": 7,
    "eventIdRaw": 7,
    "actorIdRaw": 7,
    "usrNameRaw": 7,
    "accountNameRaw": 7,
    "srcRaw": 7,
    "eventType": 8,
    "processedAt": 8,
    "eventTime": 8,
    "authType": 9,
    "tokenId": 9,
    "onBehalfOfId": 9,
    "onBehalfOfEmail": 9,
    "appId": 9,
    "orgId": 9,
}
_ATOMIC_KEYS = frozenset(
    ("eventTime", "processedAt", "eventType", "authType", "tokenId", "orgId", "appId", "eventIdRaw", "actorIdRaw")
)
_OBJECT_TRIM_RANK: dict[str, int] = {
    "Attributes": 1,
    "LinkSelf": 4,
    "LinkAlt": 4,
    "Name": 6,
    "Type": 9,
    "Id": 9,
}

# --- Action table -----------------------------------------------------------------------------------------
# Category and default severity of common Atlassian organization audit actions (ids from
# GET /admin/v1/orgs/{org}/event-actions). Unknown actions get cat "Other" and sev 5. cat comes only from
# this table, so an action's cat never changes between windows (QRadar's QID map keys on it); deployments may
# override sev (severity_overrides), and the organization's own group names go to actionGroup.
_ACTION_TABLE: dict[str, tuple[str, int]] = {
    # Authentication and sessions
    "user_login": ("Authentication", 3),
    "user_logout": ("Authentication", 2),
    "user_login_failed": ("Authentication", 6),
    "user_password_changed": ("Authentication", 5),
    "user_password_reset": ("Authentication", 5),
    "user_sessions_revoked": ("Authentication", 5),
    "two_step_verification_enabled": ("Authentication", 4),
    "two_step_verification_disabled": ("Authentication", 7),
    # API credentials
    "api_token_created": ("ApiCredentials", 6),
    "api_token_revoked": ("ApiCredentials", 5),
    "api_token_expired": ("ApiCredentials", 3),
    "api_key_created": ("ApiCredentials", 8),
    "api_key_revoked": ("ApiCredentials", 6),
    "api_key_deleted": ("ApiCredentials", 6),
    "scim_api_key_regenerated": ("ApiCredentials", 8),
    # User lifecycle
    "user_created": ("UserManagement", 4),
    "user_invited": ("UserManagement", 4),
    "user_account_claimed": ("UserManagement", 4),
    "user_details_updated": ("UserManagement", 3),
    "user_email_changed": ("UserManagement", 6),
    "user_deactivated": ("UserManagement", 6),
    "user_reactivated": ("UserManagement", 5),
    "user_deleted": ("UserManagement", 7),
    "user_removed_from_org": ("UserManagement", 6),
    # Groups
    "group_created": ("GroupManagement", 4),
    "group_renamed": ("GroupManagement", 4),
    "group_deleted": ("GroupManagement", 6),
    "user_added_to_group": ("GroupManagement", 5),
    "user_removed_from_group": ("GroupManagement", 4),
    # Product access and admin roles
    "product_access_granted": ("ProductAccess", 5),
    "product_access_revoked": ("ProductAccess", 5),
    "product_admin_granted": ("ProductAccess", 7),
    "product_admin_revoked": ("ProductAccess", 6),
    "org_admin_granted": ("ProductAccess", 9),
    "org_admin_revoked": ("ProductAccess", 7),
    "site_admin_granted": ("ProductAccess", 8),
    "site_admin_revoked": ("ProductAccess", 6),
    # Security policies and identity
    "policy_created": ("Policy", 6),
    "policy_updated": ("Policy", 7),
    "policy_deleted": ("Policy", 8),
    "authentication_policy_updated": ("Policy", 7),
    "data_security_policy_created": ("Policy", 6),
    "data_security_policy_updated": ("Policy", 7),
    "data_security_policy_deleted": ("Policy", 8),
    "ip_allowlist_updated": ("Policy", 8),
    "saml_configuration_updated": ("Identity", 8),
    "identity_provider_linked": ("Identity", 8),
    "identity_provider_unlinked": ("Identity", 8),
    "user_provisioning_directory_created": ("Identity", 6),
    "user_provisioning_directory_deleted": ("Identity", 7),
    "domain_verified": ("Identity", 5),
    "domain_removed": ("Identity", 6),
    # Audit log itself
    "audit_log_viewed": ("Audit", 2),
    "audit_log_exported": ("Audit", 6),
    # Organization, sites and apps
    "org_renamed": ("Organization", 4),
    "site_added_to_org": ("Organization", 5),
    "site_removed_from_org": ("Organization", 6),
    "app_installed": ("Apps", 5),
    "app_uninstalled": ("Apps", 4),
    "app_access_granted": ("Apps", 5),
    "app_access_revoked": ("Apps", 4),
}
#: action id -> cat, the only source of cat (unknown actions: :data:`FALLBACK_CATEGORY`).
ACTION_CATEGORIES: Mapping[str, str] = {action: cat for action, (cat, _) in _ACTION_TABLE.items()}
#: action id -> built-in sev 1..10 (used when severity_overrides has no entry for the action).
DEFAULT_SEVERITY: Mapping[str, int] = {action: sev for action, (_, sev) in _ACTION_TABLE.items()}
FALLBACK_CATEGORY = "Other"
FALLBACK_SEVERITY = 5
_CATEGORY_BY_ACTION: dict[str, str] = dict(ACTION_CATEGORIES)
_SEVERITY_TEXT = tuple(str(severity) for severity in range(11))

# --- Value escaping ---------------------------------------------------------------------------------------
_ESCAPES: dict[str, str] = {chr(code): f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}
_ESCAPES.update({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_ESCAPES.update({char: f"\\u{ord(char):04x}" for char in ("\x85", "\u2028", "\u2029")})
_ESCAPE_RE = re.compile("[\\x00-\\x1f\\x7f\\\\\\x85\\u2028\\u2029\\ud800-\\udfff]")
_UNESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|([\\nrt]))?")
_UNESCAPE_SIMPLE = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_REPLACEMENT_CHAR = "\ufffd"


def _escape_match(match: re.Match[str]) -> str:
    char = match.group()
    # Only lone surrogates are not in the table: they cannot be encoded as UTF-8.
    return _ESCAPES.get(char, _REPLACEMENT_CHAR)


def escape_value(value: str) -> str:
    """
    Escape one attribute value so that it cannot end the line, start a new attribute or break UTF-8.

    ``\\`` -> ``\\\\``, LF/CR/TAB -> ``\\n``/``\\r``/``\\t``, other C0 controls and DEL -> ``\\xHH``,
    U+0085/U+2028/U+2029 -> ``\\uXXXX``, lone surrogates -> U+FFFD. ``=`` and ``|`` stay literal.

    :param value: the raw value.
    :return: the escaped value; :func:`unescape_value` reverses it (except the U+FFFD replacement).
    """
    # isprintable() is False for every character that needs escaping (Cc, Zl, Zp, Cs) except "\\".
    if value.isprintable() and "\\" not in value:
        return value
    return _ESCAPE_RE.sub(_escape_match, value)


def _unescape_match(match: re.Match[str]) -> str:
    hex2, hex4, simple = match.groups()
    if simple is not None:
        return _UNESCAPE_SIMPLE[simple]
    if hex2 is not None:
        return chr(int(hex2, 16))
    if hex4 is not None:
        return chr(int(hex4, 16))
    raise ValueError(
        f"invalid LEEF value escape at offset {match.start()} of {match.string!r}: "
        "a backslash must start \\\\, \\n, \\r, \\t, \\xHH or \\uXXXX (lowercase hex)"
    )


def unescape_value(value: str) -> str:
    """
    Reverse :func:`escape_value`.

    :param value: an escaped value as found in a LEEF line.
    :return: the original value.
    :raises ValueError: if the value holds a backslash that does not start a valid escape.
    """
    if "\\" not in value:
        return value
    return _UNESCAPE_RE.sub(_unescape_match, value)


# --- Rendering non-string values ------------------------------------------------------------------------
def _make_json_encoder() -> Any:
    """Return a callable obj -> compact sorted JSON, reusing one C encoder (json.dumps builds one per call)."""
    from json import encoder as json_encoder

    c_make_encoder = getattr(json_encoder, "c_make_encoder", None)
    c_encode_basestring = getattr(json_encoder, "c_encode_basestring", None)
    if c_make_encoder is None or c_encode_basestring is None:  # pragma: no cover - non-CPython
        return json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
    # markers=None skips the circular-reference check: decoded JSON cannot be circular.
    c_encoder = c_make_encoder(None, None, c_encode_basestring, None, ":", ",", True, False, True)

    def encode(obj: Any) -> str:
        return "".join(c_encoder(obj, 0))

    return encode


_json_compact = _make_json_encoder()
_json_fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr).encode


def _to_json(obj: Any) -> str:
    """Compact JSON with sorted keys and non-ASCII kept; odd objects (non-str keys, sets) degrade to repr."""
    try:
        text: str = _json_compact(obj)
    except (TypeError, ValueError):  # non-str keys that cannot be sorted, sets, other odd objects
        text = _json_fallback(obj)
    return text


def _text(value: Any) -> str:
    """Text of a non-None value before escaping: bool true/false, numbers str(), dict/list compact JSON."""
    if value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dict, list, tuple)):
        return _to_json(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _render(value: Any) -> str:
    """Text of a non-None value, escaped."""
    if value.__class__ is not str:
        value = _text(value)
    if value.isprintable() and "\\" not in value:
        return value
    return _ESCAPE_RE.sub(_escape_match, value)


# --- Header -------------------------------------------------------------------------------------------------
_EVENT_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_PRODUCT_VERSION_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}\Z")
_event_id_cache: dict[str, str] = {}
_HEADER_END = "|" + _DELIMITER_FIELD + "|"


def sanitize_event_id(action: str) -> str:
    """
    Turn an action id into a LEEF EventID: chars outside ``[A-Za-z0-9._-]`` -> ``_``, at most 255 chars.

    :param action: the raw ``attributes.action``.
    :return: the EventID, ``unknown`` for an empty action.
    """
    event_id = _EVENT_ID_BAD_CHARS.sub("_", action[: EVENT_ID_MAX_CHARS * 2])[:EVENT_ID_MAX_CHARS]
    return event_id or "unknown"


def _event_id(action: str) -> str:
    event_id = _event_id_cache.get(action)
    if event_id is None:
        event_id = sanitize_event_id(action)
        # Action ids are a small closed set; the bound only guards against hostile input.
        if len(_event_id_cache) >= 4096:
            _event_id_cache.clear()
        _event_id_cache[action] = event_id
    return event_id


@lru_cache(maxsize=16)
def _header_prefix(product_version: str) -> str:
    if not _PRODUCT_VERSION_RE.match(product_version):
        raise ValueError(
            f"product_version {product_version!r} cannot go into the LEEF header: use 1-64 characters "
            "from [A-Za-z0-9._+-] (IBM defines no escaping for header fields)"
        )
    return f"LEEF:2.0|{LEEF_VENDOR}|{LEEF_PRODUCT}|{product_version}|"


@lru_cache(maxsize=64)
def _zone(time_zone: str) -> tzinfo:
    if time_zone in ("UTC", "Etc/UTC"):
        return timezone.utc  # same rendering (+00:00), cheaper conversions than ZoneInfo("UTC")
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"time_zone {time_zone!r} is not an IANA time zone name known to this system "
            "(e.g. 'UTC', 'Europe/Berlin'); install tzdata if the system has no zoneinfo database"
        ) from error


# --- Typed fields -----------------------------------------------------------------------------------------
_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_ONE_MS = timedelta(milliseconds=1)
# 13-digit epoch milliseconds (2001-09-09 .. 2286-11-20): QRadar reads them without devTimeFormat.
_DEVTIME_MIN = 10**12
_DEVTIME_MAX = 10**13
_FRACTION_RE = re.compile(r"(\.\d+)?(Z|[+-]\d\d:?\d\d)?\Z", re.IGNORECASE)


def _parse_time_slow(text: str) -> datetime:
    """Python 3.10's fromisoformat rejects 'Z' and fractions other than 3 or 6 digits; normalise them."""
    match = _FRACTION_RE.search(text)
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError(text)
    fraction = (match.group(1) or "")[:7].ljust(7, "0") if match.group(1) else ""
    offset = match.group(2) or ""
    if offset.upper() == "Z":
        offset = "+00:00"
    return datetime.fromisoformat(text[: match.start()] + fraction + offset)


# Per event, two timestamps are parsed and rendered in the target zone. datetime arithmetic plus
# isoformat(timespec=...) costs ~2 us each, so the UTC minute is cached, keyed by the text "YYYY-MM-DDTHH:MM"
# of a "Z" timestamp (the Atlassian form) and by epoch minute otherwise: ~0.4 us per timestamp.
_SECONDS = tuple(f"{second:02d}." for second in range(60))
_MILLIS = tuple(f"{milli:03d}" for milli in range(1000))
_MINUTE_CACHE_MAX = 8192


class _MinuteEntry:
    """One UTC minute: its epoch ms and its rendering in one zone up to the seconds."""

    __slots__ = ("epoch_ms", "local_prefix", "offset_suffix")

    def __init__(self, epoch_ms: int, zone: tzinfo) -> None:
        self.epoch_ms = epoch_ms
        local = datetime.fromtimestamp(epoch_ms // 1000, zone)
        offset = local.utcoffset()
        if offset is None or offset.microseconds or offset.seconds % 60:
            # A seconds offset (local mean time before ~1900): the fast rendering would be wrong.
            self.local_prefix = self.offset_suffix = ""
        else:
            iso = local.isoformat()  # YYYY-MM-DDTHH:MM:00+HH:MM
            self.local_prefix, self.offset_suffix = iso[:17], iso[19:]


_text_minutes: dict[tzinfo, dict[str, _MinuteEntry]] = {}
_epoch_minutes: dict[tzinfo, dict[int, _MinuteEntry]] = {}


def _parse_time(value: Any, zone: tzinfo) -> tuple[int, str] | None:
    """Return (epoch ms, ISO 8601 with ms and offset in ``zone``) or None if ``value`` is no usable time."""
    if value.__class__ is not str:
        return None
    try:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = _parse_time_slow(value)
    except (ValueError, OverflowError):
        return None
    second = moment.second
    milli = moment.microsecond // 1000
    if value[-1:] == "Z" and value[16:17] == ":":
        # value[:16] is date, hour and minute in UTC; value[16:] only seconds, fraction and "Z".
        cache = _text_minutes.get(zone)
        if cache is None:
            cache = _text_minutes[zone] = {}
        entry = cache.get(value[:16])
        if entry is None:
            if len(cache) >= _MINUTE_CACHE_MAX:
                cache.clear()
            try:
                epoch_ms = (moment - _EPOCH) // _ONE_MS
            except OverflowError:
                return None
            if not _DEVTIME_MIN <= epoch_ms < _DEVTIME_MAX:
                return None
            entry = cache[value[:16]] = _MinuteEntry(epoch_ms - second * 1000 - milli, zone)
        else:
            epoch_ms = entry.epoch_ms + second * 1000 + milli
    else:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_UTC)
        try:
            epoch_ms = (moment - _EPOCH) // _ONE_MS
        except OverflowError:
            return None
        if not _DEVTIME_MIN <= epoch_ms < _DEVTIME_MAX:
            return None
        minute = epoch_ms // 60000
        minutes = _epoch_minutes.get(zone)
        if minutes is None:
            minutes = _epoch_minutes[zone] = {}
        entry = minutes.get(minute)
        if entry is None:
            if len(minutes) >= _MINUTE_CACHE_MAX:
                minutes.clear()
            entry = minutes[minute] = _MinuteEntry(minute * 60000, zone)
        # The seconds of the UTC minute are the local seconds: offsets are whole minutes.
        second, milli = divmod(epoch_ms - minute * 60000, 1000)
    if not _DEVTIME_MIN <= epoch_ms < _DEVTIME_MAX:
        return None
    if not entry.local_prefix:
        return epoch_ms, moment.astimezone(zone).isoformat(timespec="milliseconds")
    return epoch_ms, entry.local_prefix + _SECONDS[second] + _MILLIS[milli] + entry.offset_suffix


@lru_cache(maxsize=8192)
def _is_ip_address(value: str) -> bool:
    # Scope ids ("fe80::1%eth0") are free text: ipaddress accepts them, QRadar's src would not.
    if len(value) > 45 or "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _severity(value: Any, action: str) -> int:
    try:
        severity = int(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"severity_overrides[{action!r}] is {value!r}: use an integer 1 (lowest) .. 10 (highest)"
        ) from error
    return 1 if severity < 1 else 10 if severity > 10 else severity


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


# --- Schema of the event ----------------------------------------------------------------------------------
_TOP_KEYS = frozenset(("id", "type", "attributes", "links", "message"))
_ATTRIBUTE_KEYS = frozenset(("time", "processedAt", "action", "actor", "context", "container", "location"))
_ACTOR_KEYS = frozenset(("id", "name", "email", "auth", "onBehalfOf", "app", "links", "picture"))
_AUTH_KEYS = frozenset(("authType", "tokenId", "tokenLabel"))
_ON_BEHALF_KEYS = frozenset(("id", "name", "email"))
_APP_KEYS = frozenset(("id", "type", "attributes"))
_LINK_KEYS = frozenset(("self", "alt"))
_EVENT_LINK_KEYS = frozenset(("self",))
_MESSAGE_KEYS = frozenset(("content", "format"))
_LOCATION_KEYS = frozenset(("ip", "countryName", "regionName", "city", "geo"))
_OBJECT_KEYS = frozenset(("id", "type", "attributes", "links"))
_EMPTY: dict[str, Any] = {}


def _unusual_object(
    obj: Any, path: str, known: frozenset[str], extra: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """
    Handle a schema object that is not a plain dict of known members (the hot path checks first).

    :return: the object to read known members from (empty if it is not an object) and the updated extra.
    """
    if obj is None:
        return _EMPTY, extra
    if extra is None:
        extra = {}
    if not isinstance(obj, dict):
        extra[path] = obj
        return _EMPTY, extra
    for name, value in obj.items():
        if name not in known and value is not None:
            extra[f"{path}.{name}" if path else str(name)] = value
    return obj, extra


_OBJECT_KEY_CACHE: dict[tuple[str, int], tuple[str, ...]] = {}


def _object_keys(label: str, index: int) -> tuple[str, ...]:
    """("\\tcontainer1Id=", "\\tcontainer1Type=", ...) for the item at 0-based ``index``."""
    names = tuple(f"\t{label}{index + 1}{field}=" for field in _OBJECT_FIELDS)
    if len(_OBJECT_KEY_CACHE) < 1024:
        _OBJECT_KEY_CACHE[label, index] = names
    return names


def _object_pairs(
    out: list[Any], items: Any, label: str, path: str, extra: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Append containerN*/contextN* pairs for the items of attributes.container / attributes.context."""
    if items.__class__ is not list:
        if extra is None:
            extra = {}
        extra[path] = items
        return extra
    for index, item in enumerate(items):
        if item.__class__ is not dict:
            if item is not None:
                extra = _unusual_object(item, f"{path}[{index}]", _OBJECT_KEYS, extra)[1]
            continue
        if not _OBJECT_KEYS.issuperset(item):
            extra = _unusual_object(item, f"{path}[{index}]", _OBJECT_KEYS, extra)[1]
        names = _OBJECT_KEY_CACHE.get((label, index)) or _object_keys(label, index)
        value = item.get("id")
        if value is not None:
            out += (names[0], value)
        value = item.get("type")
        if value is not None:
            out += (names[1], value)
        attributes = item.get("attributes")
        if attributes.__class__ is dict:
            value = attributes.get("name")
            if value is not None:
                out += (names[2], value)
        links = item.get("links")
        if links is not None:
            if links.__class__ is not dict or not _LINK_KEYS.issuperset(links):
                links, extra = _unusual_object(links, f"{path}[{index}].links", _LINK_KEYS, extra)
            value = links.get("self")
            if value is not None:
                out += (names[3], value)
            value = links.get("alt")
            if value is not None:
                out += (names[4], value)
        if attributes is not None and attributes != _EMPTY:
            out += (names[5], _text(attributes))
    return extra


# --- The encoder ------------------------------------------------------------------------------------------
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
        _check_max_bytes(self.max_bytes)
        _zone(self.time_zone)
        _header_prefix(self.product_version)
        for action, name in (self.action_group_names or {}).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"action_group_names[{action!r}] is {name!r}: use a non-empty string")
        for action, severity in (self.severity_overrides or {}).items():
            _severity(severity, action)

    def format(self, event: Mapping[str, Any]) -> str:
        """
        Encode one event with these options.

        :param event: one audit event as decoded from the Atlassian API.
        :return: the LEEF line (no trailing newline).
        """
        return format_event(
            event,
            action_group_names=self.action_group_names,
            severity_overrides=self.severity_overrides,
            time_zone=self.time_zone,
            max_bytes=self.max_bytes,
            org_id=self.org_id,
            product_version=self.product_version,
        )


def _check_max_bytes(max_bytes: int) -> None:
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(
            f"max_bytes={max_bytes} is below {MIN_MAX_BYTES}: the LEEF header and core keys alone need "
            "~300-600 bytes; raise the frame limit (RFC 5424 receivers should accept 2048)"
        )


def format_event(
    event: Mapping[str, Any],
    *,
    action_group_names: Mapping[str, str] | None = None,
    severity_overrides: Mapping[str, int] | None = None,
    time_zone: str = "UTC",
    max_bytes: int = 4096,
    org_id: str | None = None,
    product_version: str = __version__,
) -> str:
    """
    Encode one Atlassian organization audit event as one LEEF 2.0 line (TAB-delimited).

    Keys follow the schema in docs/leef-mapping.md. If header + core keys alone exceed ``max_bytes``
    (only with pathological values: action ids or names hundreds of bytes long), they are emitted anyway,
    with every custom key dropped and listed in ``truncated``.

    :param event: one event object (``data[i]`` of an events or events-stream page).
    :param action_group_names: action id -> the organization's group display name, written to ``actionGroup``.
        ``cat`` comes only from the built-in table (:data:`ACTION_CATEGORIES`, else ``Other``), so it is the
        same for an action in every window.
    :param severity_overrides: action id -> sev; falls back to :data:`DEFAULT_SEVERITY`, then 5; clamped 1..10.
    :param time_zone: IANA zone for eventTime and processedAt (devTime is always epoch ms).
    :param max_bytes: budget for the LEEF line in UTF-8 bytes, syslog header excluded; at least 512.
    :param org_id: written to orgId when given.
    :param product_version: the Version header field; 1-64 chars of ``[A-Za-z0-9._+-]``.
    :return: the line, without a line terminator; it encodes as UTF-8 with errors="strict".
    :raises ValueError: on max_bytes < 512, an unknown time zone, a bad product_version or override.
    :raises TypeError: if ``event`` is not a mapping.
    """
    if max_bytes < MIN_MAX_BYTES:
        _check_max_bytes(max_bytes)
    if event.__class__ is not dict:
        if not isinstance(event, Mapping):
            raise TypeError(f"an audit event must be a JSON object (dict), got {type(event).__name__}")
        event = dict(event)
    header = _header_prefix(product_version)
    zone = _zone(time_zone)
    # Hot path: ``out`` alternates "\tkey=" and the raw value; non-str values make the final join fail and
    # are converted then; all values are checked for characters to escape in one pass at the end.
    out: list[Any] = []
    extra: dict[str, Any] | None = None
    if not _TOP_KEYS.issuperset(event):
        extra = _unusual_object(event, "", _TOP_KEYS, extra)[1]
    attributes = event.get("attributes")
    if attributes.__class__ is not dict or not _ATTRIBUTE_KEYS.issuperset(attributes):
        attributes, extra = _unusual_object(attributes, "attributes", _ATTRIBUTE_KEYS, extra)
    actor = attributes.get("actor")
    if actor is not None and (actor.__class__ is not dict or not _ACTOR_KEYS.issuperset(actor)):
        actor, extra = _unusual_object(actor, "attributes.actor", _ACTOR_KEYS, extra)
    location = attributes.get("location")
    if location is not None and (location.__class__ is not dict or not _LOCATION_KEYS.issuperset(location)):
        location, extra = _unusual_object(location, "attributes.location", _LOCATION_KEYS, extra)

    action = attributes.get("action")
    if action.__class__ is str:
        action_text = action
    else:
        action_text = "" if action is None else _text(action)
    event_id = _event_id_cache.get(action_text) or _event_id(action_text)

    # Core keys, in order: devTime cat sev eventId actorId usrName accountName src.
    event_time = attributes.get("time")
    event_time_iso = None
    if event_time is not None:
        parsed = _parse_time(event_time, zone)
        if parsed is not None:
            out += ("devTime=", str(parsed[0]))
            event_time_iso = parsed[1]
    out += ("\tcat=" if out else "cat=", _CATEGORY_BY_ACTION.get(action_text, FALLBACK_CATEGORY))
    severity = severity_overrides.get(action_text) if severity_overrides else None
    out += (
        "\tsev=",
        _SEVERITY_TEXT[DEFAULT_SEVERITY.get(action_text, FALLBACK_SEVERITY)]
        if severity is None
        else str(_severity(severity, action_text)),
    )
    # A core value longer than 42 chars might escape to > CORE_VALUE_MAX_BYTES: _core_slow decides.
    overflow: list[Any] | None = None
    value = event.get("id")
    if value is not None:
        if value.__class__ is str and len(value) <= 42:
            out += ("\teventId=", value)
        else:
            overflow = _core_slow(out, overflow, "eventId", value)
    if actor:
        value = actor.get("id")
        if value is not None:
            if value.__class__ is str and len(value) <= 42:
                out += ("\tactorId=", value)
            else:
                overflow = _core_slow(out, overflow, "actorId", value)
        actor_name = actor.get("name")
        value = actor.get("email")
        if value is None or value == "":
            value = actor_name
        if value is not None:
            if value.__class__ is str and len(value) <= 42:
                out += ("\tusrName=", value)
            else:
                overflow = _core_slow(out, overflow, "usrName", value)
        if actor_name is not None:
            if actor_name.__class__ is str and len(actor_name) <= 42:
                out += ("\taccountName=", actor_name)
            else:
                overflow = _core_slow(out, overflow, "accountName", actor_name)
    source_raw = None
    if location:
        value = location.get("ip")
        if value is not None:
            if value.__class__ is str and _is_ip_address(value):
                out += ("\tsrc=", value)
            else:
                source_raw = value
    core_length = len(out)

    # Custom keys, in the documented order.
    if event_time_iso is not None:
        out += ("\teventTime=", event_time_iso)
    elif event_time is not None:
        out += ("\teventTimeRaw=", event_time)
    value = attributes.get("processedAt")
    if value is not None:
        parsed = _parse_time(value, zone)
        if parsed is None:
            out += ("\tprocessedAtRaw=", value)
        else:
            out += ("\tprocessedAt=", parsed[1])
    if overflow:
        out += overflow
    if source_raw is not None:
        out += ("\tsrcRaw=", source_raw)
    if action_text and action_text != event_id:
        out += ("\tactionRaw=", action_text)
    value = event.get("type")
    if value is not None:
        out += ("\teventType=", value)
    if org_id is not None:
        out += ("\torgId=", org_id)
    group_name = action_group_names.get(action_text) if action_group_names else None
    if group_name is not None:
        if group_name.__class__ is not str or not group_name:
            raise ValueError(f"action_group_names[{action_text!r}] is {group_name!r}: use a non-empty string")
        out += ("\tactionGroup=", group_name)
    member = event.get("message")
    if member is not None:
        if member.__class__ is not dict or not _MESSAGE_KEYS.issuperset(member):
            member, extra = _unusual_object(member, "message", _MESSAGE_KEYS, extra)
        value = member.get("content")
        if value is not None:
            out += ("\tmsg=", value)
        value = member.get("format")
        if value is not None:
            out += ("\tmsgFormat=", value)
    if location:
        value = location.get("countryName")
        if value is not None:
            out += ("\tcountry=", value)
        value = location.get("regionName")
        if value is not None:
            out += ("\tregion=", value)
        value = location.get("city")
        if value is not None:
            out += ("\tcity=", value)
        value = location.get("geo")
        if value is not None:
            out += ("\tgeo=", value)
    if actor:
        member = actor.get("auth")
        if member is not None:
            if member.__class__ is not dict or not _AUTH_KEYS.issuperset(member):
                member, extra = _unusual_object(member, "attributes.actor.auth", _AUTH_KEYS, extra)
            value = member.get("authType")
            if value is not None:
                out += ("\tauthType=", value)
            value = member.get("tokenId")
            if value is not None:
                out += ("\ttokenId=", value)
            value = member.get("tokenLabel")
            if value is not None:
                out += ("\ttokenLabel=", value)
        member = actor.get("onBehalfOf")
        if member is not None:
            if member.__class__ is not dict or not _ON_BEHALF_KEYS.issuperset(member):
                member, extra = _unusual_object(member, "attributes.actor.onBehalfOf", _ON_BEHALF_KEYS, extra)
            value = member.get("id")
            if value is not None:
                out += ("\tonBehalfOfId=", value)
            value = member.get("name")
            if value is not None:
                out += ("\tonBehalfOfName=", value)
            value = member.get("email")
            if value is not None:
                out += ("\tonBehalfOfEmail=", value)
        member = actor.get("app")
        if member is not None:
            if member.__class__ is not dict or not _APP_KEYS.issuperset(member):
                member, extra = _unusual_object(member, "attributes.actor.app", _APP_KEYS, extra)
            value = member.get("id")
            if value is not None:
                out += ("\tappId=", value)
            value = member.get("type")
            if value is not None:
                out += ("\tappType=", value)
            value = member.get("attributes")
            if value is not None and value != _EMPTY:
                out += ("\tappAttributes=", _text(value))
        member = actor.get("links")
        if member is not None:
            if member.__class__ is not dict or not _LINK_KEYS.issuperset(member):
                member, extra = _unusual_object(member, "attributes.actor.links", _LINK_KEYS, extra)
            value = member.get("self")
            if value is not None:
                out += ("\tactorLinkSelf=", value)
            value = member.get("alt")
            if value is not None:
                out += ("\tactorLinkAlt=", value)
        value = actor.get("picture")
        if value is not None:
            out += ("\tactorPicture=", value)
    member = event.get("links")
    if member is not None:
        if member.__class__ is not dict or not _EVENT_LINK_KEYS.issuperset(member):
            member, extra = _unusual_object(member, "links", _EVENT_LINK_KEYS, extra)
        value = member.get("self")
        if value is not None:
            out += ("\teventLink=", value)
    value = attributes.get("container")
    if value is not None:
        extra = _object_pairs(out, value, "container", "attributes.container", extra)
    value = attributes.get("context")
    if value is not None:
        extra = _object_pairs(out, value, "context", "attributes.context", extra)
    if extra:
        out += ("\textra=", _to_json(extra))

    try:
        body = "".join(out)
    except TypeError:  # a non-str value (number, bool, object) where the schema expects a string
        out = [item if item.__class__ is str else _text(item) for item in out]
        body = "".join(out)
    # isprintable() is False for every character that needs escaping except the backslash.
    values = "".join(out[1::2])
    if not values.isprintable() or "\\" in values:
        out[1::2] = [escape_value(item) for item in out[1::2]]
        body = "".join(out)
    header += event_id + _HEADER_END
    line = header + body
    if (len(line) if line.isascii() else len(line.encode("utf-8"))) <= max_bytes:
        return line
    return _fit(header, out, core_length, max_bytes)


def _core_slow(out: list[Any], overflow: list[Any] | None, key: str, value: Any) -> list[Any] | None:
    """Emit a long or non-str core value, or move it to <key>Raw if escaped it exceeds the core cap."""
    escaped = _render(value)
    if _utf8_len(escaped) <= CORE_VALUE_MAX_BYTES:
        out += ("\t" + key + "=", value if value.__class__ is str else _text(value))
        return overflow
    if overflow is None:
        overflow = []
    overflow += ("\t" + key + "Raw=", value if value.__class__ is str else _text(value))
    return overflow


# --- Frame budget -----------------------------------------------------------------------------------------
def _trim_rank(key: str) -> int:
    rank = _TRIM_RANK.get(key)
    if rank is not None:
        return rank
    for suffix, object_rank in _OBJECT_TRIM_RANK.items():
        if key.endswith(suffix):
            return object_rank
    return 9


def _is_atomic(key: str) -> bool:
    # A shortened id, type or timestamp would look valid and mislead; such values are dropped whole.
    return key in _ATOMIC_KEYS or key.endswith(("Id", "Type"))


def _cut_escaped(value: str, max_value_bytes: int) -> str:
    """Cut an escaped value to at most ``max_value_bytes`` UTF-8 bytes, never inside a char or an escape."""
    head = value.encode("utf-8")[:max_value_bytes].decode("utf-8", "ignore")
    tail_start = max(len(head) - 6, 0)
    last_backslash = head.rfind("\\", tail_start)
    if last_backslash >= 0:
        run_start = last_backslash
        while run_start > 0 and head[run_start - 1] == "\\":
            run_start -= 1
        if (last_backslash - run_start) % 2 == 0:  # an odd run: the last backslash opens an escape
            opener = head[last_backslash + 1 : last_backslash + 2]
            needed = {"x": 4, "u": 6}.get(opener, 2)
            if last_backslash + needed > len(head):
                head = head[:last_backslash]
    return head


class _TruncatedList:
    """The truncated= value: key names up to TRUNCATED_LIST_MAX_BYTES, then a "+N" count of the rest."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.names_bytes = 0
        self.overflow = 0

    def pair_bytes(self) -> int:
        if not self.names and not self.overflow:
            return 0
        size = len("\ttruncated=") + self.names_bytes
        if self.overflow:
            size += len(f",+{self.overflow}") if self.names else len(f"+{self.overflow}")
        return size

    def cost_of_adding(self, key: str) -> int:
        before = self.pair_bytes()
        self.add(key)
        after = self.pair_bytes()
        self.remove_last()
        return after - before

    def add(self, key: str) -> None:
        addition = len(key) + (1 if self.names else 0)
        if not self.overflow and self.names_bytes + addition <= TRUNCATED_LIST_MAX_BYTES:
            self.names.append(key)
            self.names_bytes += addition
        else:
            self.overflow += 1

    def remove_last(self) -> None:
        if self.overflow:
            self.overflow -= 1
        else:
            key = self.names.pop()
            self.names_bytes -= len(key) + (1 if self.names else 0)

    def render(self) -> str:
        parts = list(self.names)
        if self.overflow:
            parts.append(f"+{self.overflow}")
        return "truncated=" + ",".join(parts)


def _fit(header: str, out: list[str], core_length: int, max_bytes: int) -> str:
    """Trim custom values (least important first) until the line fits; see the README's LEEF mapping."""
    core = [out[index].lstrip("\t") + out[index + 1] for index in range(0, core_length, 2)]
    custom = [out[index][1:] + out[index + 1] for index in range(core_length, len(out), 2)]
    keys = [pair[: pair.index("=")] for pair in custom]
    sizes = [_utf8_len(pair) for pair in custom]
    # Bytes of header + kept pairs + TABs, without the truncated= pair.
    line_bytes = _utf8_len(header) + sum(map(_utf8_len, core)) + sum(sizes) + len(core) + len(custom) - 1
    order = sorted(range(len(custom)), key=lambda index: (_trim_rank(keys[index]), -index))
    kept: list[str | None] = list(custom)
    truncated = _TruncatedList()
    for index in order:
        if line_bytes + truncated.pair_bytes() <= max_bytes:
            break
        key = keys[index]
        truncated.add(key)
        need = line_bytes + truncated.pair_bytes() - max_bytes
        value_bytes = sizes[index] - len(key) - 1
        if value_bytes > need and not _is_atomic(key):
            value = _cut_escaped(custom[index][len(key) + 1 :], value_bytes - need)
            if value:
                kept[index] = key + "=" + value
                line_bytes -= value_bytes - _utf8_len(value)
                break
        # Nothing useful left of the value (or a cut id would mislead): drop the pair and its TAB.
        kept[index] = None
        line_bytes -= sizes[index] + 1
    final = core + [pair for pair in kept if pair is not None]
    if truncated.names or truncated.overflow:
        final.append(truncated.render())
    return header + "\t".join(final)


# --- Parsing (tests, end-to-end checks) --------------------------------------------------------------------
def _delimiter(field: str) -> str:
    lowered = field.lower()
    for prefix in ("0x", "x"):
        if lowered.startswith(prefix) and 1 <= len(lowered) - len(prefix) <= 4:
            try:
                return chr(int(lowered[len(prefix) :], 16))
            except ValueError:
                break
    if len(field) == 1:
        return field
    raise ValueError(f"LEEF 2.0 delimiter field {field!r} is neither one character nor a hex value like x09")


def parse_leef(line: str) -> tuple[list[str], dict[str, str]]:
    """
    Split a LEEF 2.0 line the way QRadar does and unescape the values (for tests and receivers' checks).

    The first six ``|``-separated fields are the header; the rest is split on the declared delimiter, and
    each attribute at its first ``=``.

    :param line: one LEEF 2.0 line without syslog header or line terminator.
    :return: (header fields ``["LEEF:2.0", vendor, product, version, EventID, delimiter]``, key -> value).
    :raises ValueError: on a malformed header, an attribute without ``=``, a duplicate key or a bad escape.
    """
    fields = line.split("|", 6)
    if len(fields) != 7 or fields[0] != "LEEF:2.0":
        raise ValueError(f"not a LEEF 2.0 line (expected 'LEEF:2.0|' and 6 header fields): {line[:120]!r}")
    header, body = fields[:6], fields[6]
    attributes: dict[str, str] = {}
    if not body:
        return header, attributes
    for pair in body.split(_delimiter(header[5])):
        key, separator, value = pair.partition("=")
        if not separator:
            raise ValueError(f"LEEF attribute {pair[:80]!r} has no '='")
        if key in attributes:
            raise ValueError(f"LEEF key {key!r} appears twice; QRadar may ignore one of the values")
        attributes[key] = unescape_value(value)
    return header, attributes


def is_schema_key(key: str) -> bool:
    """
    Tell whether ``key`` belongs to the documented schema (fixed keys or containerN*/contextN* keys).

    :param key: an attribute key.
    :return: True if :func:`format_event` may emit it.
    """
    return key in SCHEMA_KEYS or DYNAMIC_KEY_PATTERN.match(key) is not None
