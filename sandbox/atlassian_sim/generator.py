"""
Deterministic generator of realistic Atlassian organization audit-log events, and the index that serves them.

Events are not all held as dicts: :class:`EventStore` keeps one compact :class:`IndexEntry` per event (times,
id, flags) sorted two ways, and materialises the JSON of an event on demand from an RNG seeded by
``(seed, event id)``. A 1M-event range therefore costs a few hundred MB, not several GB.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import random
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sandbox.atlassian_sim.config import SimulatorConfig

_HOUR_US = 3_600_000_000
_DAY_MS = 86_400_000
_NEG_INF = -(1 << 62)
_POS_INF = 1 << 62

PRECISION_MICROS = 0
PRECISION_MILLIS = 1
PRECISION_SECONDS = 2
_PRECISION_MASK = 3
FLAG_HOSTILE = 4
FLAG_EXPLICIT = 8

_API_HOST = "https://api.atlassian.com"
_ADMIN_HOST = "https://admin.atlassian.com"

#: Strings that break naive log encoders; hostile events carry them in names, emails, group names,
#: token labels and messages. Other test suites import this tuple.
HOSTILE_STRINGS: tuple[str, ...] = (
    "line one\nline two",
    "carriage\rreturn",
    "tab\tseparated",
    "pipe|in|name",
    "key=value=again",
    "back\\slash\\",
    "line\u2028separator",
    "next\u0085line",
    "nul\x00byte",
    "\x1b[31mred alert\x1b[0m",
    "".join(f"{index:05d}-padding-" for index in range(1500))[:20480],
    "emoji \U0001f600\U0001f525 \U0001f469\u200d\U0001f4bb \U0001f1e9\U0001f1ea",
    "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u202eevil.exe\u202c txt",
    "x\nLEEF:2.0|Atlassian|Organization Audit Log|1|user_login|x09|usrName=root\tsev=1",
)


class EventAction(NamedTuple):
    """One audit action the generator uses, as ``/event-actions`` lists it."""

    action_id: str
    display_name: str
    group_display_name: str
    weight: int


#: Every action the generator emits, with its relative frequency.
ACTIONS: tuple[EventAction, ...] = (
    EventAction("user_login", "Logged in", "Authentication", 30),
    EventAction("user_logged_out", "Logged out", "Authentication", 8),
    EventAction("api_token_created", "Created API token", "API tokens", 4),
    EventAction("api_token_revoked", "Revoked API token", "API tokens", 2),
    EventAction("user_added_to_group", "Added user to group", "Group management", 10),
    EventAction("user_removed_from_group", "Removed user from group", "Group management", 5),
    EventAction("group_created", "Created group", "Group management", 3),
    EventAction("group_deleted", "Deleted group", "Group management", 1),
    EventAction("policy_updated", "Updated authentication policy", "Security policies", 2),
    EventAction("user_deactivated", "Deactivated user account", "User management", 3),
    EventAction("user_reactivated", "Reactivated user account", "User management", 1),
    EventAction("user_invited", "Invited user", "User management", 5),
    EventAction("product_access_granted", "Granted product access", "Product access", 8),
    EventAction("product_access_revoked", "Revoked product access", "Product access", 4),
    EventAction("audit_log_exported", "Exported audit log", "Organization", 1),
    EventAction("org_api_key_created", "Created organization API key", "Organization", 1),
    EventAction("domain_verified", "Verified domain", "Organization", 1),
)

#: Product keys the ``product`` filter knows (jira.js open enum).
PRODUCTS: tuple[str, ...] = ("jira", "confluence", "bitbucket", "loom", "guard_detect")

_APP_ACTORS: tuple[tuple[str, str], ...] = (
    ("jira", "Jira"),
    ("confluence", "Confluence"),
    ("bitbucket", "Bitbucket"),
    ("loom", "Loom"),
    ("guard_detect", "Atlassian Guard Detect"),
)
_FIRST_NAMES = (
    "Alice", "Bruno", "Chen", "Dmitri", "Elena", "Fatima", "Gustavo", "Hiroshi", "Ingrid", "Jamal",
    "Kavya", "Lars", "Mar\u00eda", "Ngoc", "Olga", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
)  # fmt: skip
_LAST_NAMES = (
    "Anders", "Birkeland", "Costa", "Dubois", "Eriksen", "Fischer", "Garc\u00eda", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt",
)  # fmt: skip
_GROUP_NAMES = (
    "jira-software-users", "confluence-users", "site-admins", "org-admins", "developers", "contractors",
    "security-team", "finance", "support-agents", "bitbucket-users", "loom-creators", "auditors",
)  # fmt: skip
_TOKEN_LABELS = ("ci", "jenkins", "terraform", "backup-script", "grafana", "siem-export", "local dev")
_LOCATIONS = (
    ("Costa Rica", "Provincia de Cartago", "Cartago"),
    ("Germany", "Bavaria", "Munich"),
    ("United States", "California", "San Francisco"),
    ("Australia", "New South Wales", "Sydney"),
    ("Japan", "Tokyo", "Tokyo"),
    ("India", "Karnataka", "Bengaluru"),
    ("Brazil", "S\u00e3o Paulo", "S\u00e3o Paulo"),
    ("United Kingdom", "England", "London"),
)
_GEOS = ("EU", "US", "APAC")


class IndexEntry(NamedTuple):
    """Compact record of one event: enough to sort, filter by time and materialise it."""

    time_us: int
    processed_ms: int
    event_id: str
    flags: int

    @property
    def time_ms(self) -> int:
        """Event time floored to the millisecond (the clock ``from``/``to`` filter on)."""
        return self.time_us // 1000


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} is naive; pass a timezone-aware datetime (tzinfo=timezone.utc)")
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_time(epoch_us: int, precision: int) -> str:
    """ISO 8601 UTC text with ``Z``, with microsecond, millisecond or no fraction."""
    seconds, micros = divmod(epoch_us, 1_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if precision == PRECISION_MICROS:
        return f"{base}.{micros:06d}Z"
    if precision == PRECISION_MILLIS:
        return f"{base}.{micros // 1000:03d}Z"
    return f"{base}Z"


_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str) -> tuple[int, int]:
    """
    Parse an API timestamp leniently into ``(epoch_us, precision)``.

    :raises ValueError: when ``text`` is not an ISO 8601 date-time.
    """
    match = _ISO_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz)
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    if not fraction:
        precision = PRECISION_SECONDS
    elif len(fraction) <= 3:
        precision = PRECISION_MILLIS
    else:
        precision = PRECISION_MICROS
    return to_epoch_us(moment) + micros, precision


def _iter_generated_index(config: SimulatorConfig) -> Iterator[IndexEntry]:
    """Yield the index entries of the generated events, hour by hour."""
    start_us, end_us = to_epoch_us(config.start), to_epoch_us(config.end)
    lag_max_ms = int(config.processing_lag_max_seconds * 1000)
    first_hour = start_us // _HOUR_US
    last_hour = -(-end_us // _HOUR_US)
    for hour in range(first_hour, last_hour):
        # Seeding by the absolute hour makes an hour's events identical whatever range contains it.
        rng = random.Random(f"atlassian-sim/{config.seed}/{hour}")
        hour_us = hour * _HOUR_US
        for _ in range(config.events_per_hour):
            # Always draw the same values in the same order, so ids and times do not depend on hostile_ratio.
            offset_us = rng.randrange(_HOUR_US)
            precision = rng.randrange(3)
            lag_ms = rng.randint(0, lag_max_ms)
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            hostile = rng.random() < config.hostile_ratio
            if config.late_fraction and rng.random() < config.late_fraction:
                # Drawn only when the tail is on, so a config without it keeps its events bit for bit.
                lag_ms = int(rng.uniform(*config.late_lag_seconds) * 1000)
            time_us = hour_us + offset_us
            if precision == PRECISION_MILLIS:
                time_us -= time_us % 1000
            elif precision == PRECISION_SECONDS:
                time_us -= time_us % 1_000_000
            if not start_us <= time_us < end_us:
                continue
            processed_ms = -(-time_us // 1000) + lag_ms
            yield IndexEntry(time_us, processed_ms, event_id, precision | (FLAG_HOSTILE if hostile else 0))


class _Pools:
    """Per-seed cast of users, groups, sites and policies that events refer to (so ids repeat)."""

    def __init__(self, config: SimulatorConfig) -> None:
        rng = random.Random(f"atlassian-sim/{config.seed}/pools")
        self.org_id = config.org_id
        self.org_name = "Acme Corporation"
        self.users: list[dict[str, Any]] = []
        for index in range(40):
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            if rng.random() < 0.8:
                account_id = f"712020:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            else:
                account_id = f"{rng.getrandbits(96):024x}"  # legacy 24-hex Atlassian account id
            ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
            email_local = ascii_name.lower().replace("'", "").replace(" ", "")
            ips = []
            for _ in range(2):
                if rng.random() < 0.7:
                    ips.append(f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randint(1, 254)}")
                else:
                    ips.append(f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}")
            self.users.append(
                {
                    "id": account_id,
                    "name": f"{first} {last}",
                    "email": f"{email_local}{index}@acme.example.com",
                    "ips": ips,
                    "location": rng.choice(_LOCATIONS),
                    "geo": rng.choice(_GEOS),
                }
            )
        self.groups = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), name) for name in _GROUP_NAMES]
        self.sites = [
            (str(uuid.UUID(int=rng.getrandbits(128), version=4)), name)
            for name in ("acme.atlassian.net", "acme-sandbox.atlassian.net", "acme-eu.atlassian.net")
        ]
        self.auth_policy = (str(uuid.UUID(int=rng.getrandbits(128), version=4)), "Default authentication policy")
        self.org_policy = (str(uuid.UUID(int=rng.getrandbits(128), version=4)), "Data security policy")
        self.scim_app = (str(uuid.UUID(int=rng.getrandbits(128), version=4)), "Okta SCIM provisioning")
        self.action_weights = list(itertools.accumulate(action.weight for action in ACTIONS))


class _EventBuilder:
    """Materialise one generated event from its index entry; pure function of (config, entry)."""

    def __init__(self, config: SimulatorConfig, pools: _Pools) -> None:
        self.config = config
        self.pools = pools

    def build(self, entry: IndexEntry) -> dict[str, Any]:
        cfg, pools = self.config, self.pools
        rng = random.Random(f"atlassian-sim/{cfg.seed}/event/{entry.event_id}")
        hostile = bool(entry.flags & FLAG_HOSTILE)

        def taint(normal: str, chance: float = 0.5) -> str:
            if hostile and rng.random() < chance:
                return f"{normal} {rng.choice(HOSTILE_STRINGS)}" if rng.random() < 0.5 else rng.choice(HOSTILE_STRINGS)
            return normal

        action = ACTIONS[bisect.bisect_right(pools.action_weights, rng.randrange(pools.action_weights[-1]))]
        org_link = f"{_API_HOST}/admin/v1/orgs/{pools.org_id}"
        org_object: dict[str, Any] = {
            "id": pools.org_id,
            "type": "orgs",
            "attributes": {"name": pools.org_name},
            "links": {"self": org_link, "alt": f"{_ADMIN_HOST}/o/{pools.org_id}"},
        }
        human = rng.choice(pools.users)
        app_actor = action.action_id not in ("user_login", "user_logged_out", "api_token_created") and (
            rng.random() < 0.25
        )
        location: dict[str, str] | None
        if app_actor:
            app_id, app_name = rng.choice(_APP_ACTORS)
            actor: dict[str, Any] = {"id": app_id, "name": app_name, "links": {}}
            if rng.random() < 0.4:
                actor["onBehalfOf"] = {"id": human["id"], "name": taint(human["name"]), "email": human["email"]}
            if rng.random() < 0.3:
                scim_id, scim_name = pools.scim_app
                actor["app"] = {"id": scim_id, "type": "apps", "attributes": {"name": scim_name}}
            if rng.random() < 0.2:
                actor["auth"] = {"authType": "container-token"}
            location = {"geo": rng.choice(_GEOS)} if rng.random() < 0.6 else None
        else:
            actor = {"id": human["id"], "name": taint(human["name"]), "email": taint(human["email"], 0.3)}
            if rng.random() < 0.15 or action.action_id in ("audit_log_exported",):
                actor["auth"] = {
                    "authType": "api-token",
                    "tokenId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "tokenLabel": taint(rng.choice(_TOKEN_LABELS)),
                }
            actor["links"] = {
                "self": f"{_API_HOST}/users/{human['id']}/manage/profile",
                "alt": f"{_ADMIN_HOST}/o/{pools.org_id}/users/{human['id']}",
            }
            country, region, city = human["location"]
            location = {"ip": rng.choice(human["ips"]), "countryName": country, "regionName": region, "city": city}
            if rng.random() < 0.3:
                location["geo"] = human["geo"]

        subject = rng.choice(pools.users)
        subject_object: dict[str, Any] = {
            "id": subject["id"],
            "type": "users",
            "attributes": {"name": taint(subject["name"], 0.3), "email": subject["email"]},
            "links": {
                "self": f"{_API_HOST}/users/{subject['id']}/manage/profile",
                "alt": f"{_ADMIN_HOST}/o/{pools.org_id}/users/{subject['id']}",
            },
        }
        group_id, group_name = rng.choice(pools.groups)
        group_object: dict[str, Any] = {
            "id": group_id,
            "type": "groups",
            "attributes": {"name": taint(group_name)},
            "links": {
                "self": f"{org_link}/directory/groups/{group_id}",
                "alt": None if rng.random() < 0.3 else f"{_ADMIN_HOST}/o/{pools.org_id}/groups/{group_id}",
            },
        }
        site_id, site_name = rng.choice(pools.sites)
        product = rng.choice(PRODUCTS[:4])
        site_object: dict[str, Any] = {
            "id": site_id,
            "type": "sites",
            "attributes": {"name": site_name, "product": product},
            "links": {"self": f"https://{site_name}", "alt": None},
        }
        who = actor.get("name", actor["id"])
        context: list[dict[str, Any]] = []
        container: list[dict[str, Any]] = [org_object]
        aid = action.action_id
        if aid in ("user_login", "user_logged_out"):
            verb = "logged in" if aid == "user_login" else "logged out"
            message = f"{who} {verb}"
            if rng.random() < 0.3:
                container.append(site_object)
        elif aid in ("api_token_created", "api_token_revoked"):
            label = taint(rng.choice(_TOKEN_LABELS))
            context.append(subject_object)
            message = f"{who} {'created' if aid == 'api_token_created' else 'revoked'} API token {label}"
        elif aid in ("user_added_to_group", "user_removed_from_group"):
            context.extend([subject_object, group_object])
            preposition = "to" if aid == "user_added_to_group" else "from"
            verb = "added" if aid == "user_added_to_group" else "removed"
            message = (
                f"{who} {verb} {subject_object['attributes']['name']} {preposition} "
                f"{group_object['attributes']['name']}"
            )
        elif aid in ("group_created", "group_deleted"):
            context.append(group_object)
            message = f"{who} {aid.split('_')[1]} group {group_object['attributes']['name']}"
        elif aid == "policy_updated":
            policy_id, policy_name = pools.auth_policy if rng.random() < 0.6 else pools.org_policy
            policy_type = "auth-policy" if policy_id == pools.auth_policy[0] else "org-policy"
            context.append(
                {
                    "id": policy_id,
                    "type": policy_type,
                    "attributes": {"name": policy_name},
                    "links": {"self": None, "alt": f"{_ADMIN_HOST}/o/{pools.org_id}/security/{policy_id}"},
                }
            )
            message = f"{who} updated policy {policy_name}"
        elif aid in ("user_deactivated", "user_reactivated", "user_invited"):
            context.append(subject_object)
            verb = {"user_deactivated": "deactivated", "user_reactivated": "reactivated"}.get(aid, "invited")
            message = f"{who} {verb} {subject_object['attributes']['name']}"
            if aid == "user_invited":
                container.append(site_object)
        elif aid in ("product_access_granted", "product_access_revoked"):
            context.append(subject_object)
            container.append(site_object)
            verb = "granted" if aid == "product_access_granted" else "revoked"
            message = f"{who} {verb} {product} access on {site_name} for {subject_object['attributes']['name']}"
        elif aid == "audit_log_exported":
            message = f"{who} exported the organization audit log"
        elif aid == "org_api_key_created":
            message = f"{who} created admin API key {taint(rng.choice(_TOKEN_LABELS))}"
        else:
            domain = rng.choice(("acme.example.com", "acme-labs.example.org"))
            context.append({"id": domain, "type": "domains", "attributes": {"name": domain}, "links": {}})
            message = f"{who} verified domain {domain}"
        if hostile:
            message = f"{message} {rng.choice(HOSTILE_STRINGS)}"

        attributes: dict[str, Any] = {
            "time": format_time(entry.time_us, entry.flags & _PRECISION_MASK),
            "processedAt": format_time(entry.processed_ms * 1000, PRECISION_MILLIS),
            "action": aid,
            "actor": actor,
            "context": context,
            "container": container,
        }
        if location is not None:
            attributes["location"] = location
        event: dict[str, Any] = {
            "id": entry.event_id,
            "type": "events",
            "attributes": attributes,
            "links": {"self": f"{org_link}/events/{entry.event_id}"},
        }
        if rng.random() < 0.95 or hostile:  # a hostile event always carries its hostile message
            event["message"] = {"content": message, "format": "simple"}
        return event


def event_products(event: dict[str, Any]) -> set[str]:
    """
    Products an event belongs to, for the ``/events`` ``product`` filter.

    The API does not say how it derives them; we take ``attributes.product`` of every container and context
    object, plus the actor id when the actor is a product app (``jira``, ``confluence``...). Lowercase.
    """
    attributes = event.get("attributes") or {}
    found: set[str] = set()
    for item in [*(attributes.get("container") or []), *(attributes.get("context") or [])]:
        product = ((item or {}).get("attributes") or {}).get("product")
        if isinstance(product, str):
            found.add(product.lower())
    actor_id = ((attributes.get("actor") or {}).get("id") or "").lower()
    if actor_id in PRODUCTS:
        found.add(actor_id)
    return found


def dump_json(value: Any) -> str:
    """Compact JSON as the simulator sends it: raw UTF-8 (no ASCII escaping), control chars escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _without_processed_at(event: dict[str, Any]) -> dict[str, Any]:
    attributes = {key: value for key, value in event["attributes"].items() if key != "processedAt"}
    return {**event, "attributes": attributes}


class EventStore:
    """
    All events of one :class:`SimulatorConfig`, indexed for the two list endpoints.

    ``by_processed`` is sorted by ``(processed_ms, event_id)`` (the stream order), ``by_time`` by
    ``(time_us, event_id)`` (``/events`` walks it backwards). Visibility and retention are applied per
    query against the ``now_ms`` the caller passes.
    """

    def __init__(self, config: SimulatorConfig, cache_size: int = 50_000) -> None:
        self.config = config
        self._builder = _EventBuilder(config, _Pools(config))
        entries = list(_iter_generated_index(config))
        self._explicit: dict[str, dict[str, Any]] = {}
        for raw in config.extra_events:
            entries.append(self._index_explicit(raw))
        self._by_id = {entry.event_id: entry for entry in entries}
        if len(self._by_id) != len(entries):
            raise ValueError("SimulatorConfig.extra_events reuse an event id that already exists")
        entries.sort(key=lambda entry: (entry.time_us, entry.event_id))
        self.by_time: list[IndexEntry] = entries
        self.by_processed: list[IndexEntry] = sorted(entries, key=lambda entry: (entry.processed_ms, entry.event_id))
        self.max_lag_ms = max((entry.processed_ms - entry.time_ms for entry in entries), default=0)
        self._event_cached = functools.lru_cache(maxsize=cache_size)(self._materialise)
        self._json_cached = functools.lru_cache(maxsize=cache_size * 2)(self._render)

    def _index_explicit(self, raw: dict[str, Any]) -> IndexEntry:
        try:
            event_id = str(raw["id"])
            time_us, precision = parse_time(raw["attributes"]["time"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"extra event needs id and attributes.time in ISO 8601: {error}") from error
        processed_text = raw["attributes"].get("processedAt")
        processed_ms = parse_time(processed_text)[0] // 1000 if processed_text else -(-time_us // 1000)
        event = json.loads(json.dumps(raw))  # private deep copy: callers may mutate their dict later
        event["attributes"].setdefault("processedAt", format_time(processed_ms * 1000, PRECISION_MILLIS))
        self._explicit[event_id] = event
        return IndexEntry(time_us, processed_ms, event_id, precision | FLAG_EXPLICIT)

    def __len__(self) -> int:
        return len(self.by_time)

    def entry(self, event_id: str) -> IndexEntry | None:
        """Index entry of an event id, or None."""
        return self._by_id.get(event_id)

    def _materialise(self, entry: IndexEntry) -> dict[str, Any]:
        if entry.flags & FLAG_EXPLICIT:
            return self._explicit[entry.event_id]
        return self._builder.build(entry)

    def shared_event(self, entry: IndexEntry) -> dict[str, Any]:
        """The cached stream-form dict of an event. Read-only: it is shared between threads."""
        return self._event_cached(entry)

    def _render(self, entry: IndexEntry, with_processed_at: bool) -> str:
        event = self.shared_event(entry)
        return dump_json(event if with_processed_at else _without_processed_at(event))

    def event_json(self, entry: IndexEntry, with_processed_at: bool) -> str:
        """Cached JSON text of an event; ``/events`` pages drop ``processedAt``, stream pages keep it."""
        return self._json_cached(entry, with_processed_at)

    def event(self, entry: IndexEntry) -> dict[str, Any]:
        """A fresh, caller-owned dict of an event in stream form (with ``processedAt``)."""
        result: dict[str, Any] = json.loads(self.event_json(entry, True))
        return result

    def floor_ms(self, now_ms: int) -> int:
        """Oldest event time (ms) retention still returns at ``now_ms``."""
        return now_ms - self.config.retention_days * _DAY_MS

    def visible_until_ms(self, now_ms: int) -> int:
        """The newest ``processedAt`` (ms) a reader sees at ``now_ms`` (visibility model), or +inf."""
        if not self.config.visible_only_when_processed:
            return _POS_INF
        return now_ms - int(self.config.visibility_delay_seconds * 1000)

    def is_served(self, entry: IndexEntry, now_ms: int) -> bool:
        """Whether retention and visibility let the API return this event at ``now_ms``."""
        if entry.time_ms < self.floor_ms(now_ms):
            return False
        return entry.processed_ms <= self.visible_until_ms(now_ms)

    def filter_ms(self, entry: IndexEntry, clock: str | None = None) -> int:
        """The value ``from``/``to`` of the stream compare with: event time or processedAt (ms)."""
        return entry.processed_ms if (clock or self.config.filter_clock) == "processed" else entry.time_ms

    # --- stream order -----------------------------------------------------------------------------------

    def walk_stream(
        self,
        *,
        from_ms: int | None,
        to_ms: int | None,
        after: tuple[int, str] | None,
        ascending: bool,
        now_ms: int,
        include_after: bool = False,
    ) -> Iterator[IndexEntry]:
        """
        Served events with ``from_ms <= clock <= to_ms``, strictly beyond ``after`` in the walk direction.

        The clock is ``config.filter_clock``: the event time, or its processedAt.

        :param after: a ``(processed_ms, event_id)`` position, or None for the start of the walk.
        :param ascending: walk by increasing ``(processed_ms, event_id)``.
        :param include_after: start at ``after`` itself instead of just beyond it.
        """
        floor = self.floor_ms(now_ms)
        low_ms = max(from_ms if from_ms is not None else _NEG_INF, floor)  # processedAt >= time >= from
        by_processed = self.config.filter_clock == "processed"
        slack = 0 if by_processed else self.max_lag_ms
        high_ms = to_ms + slack if to_ms is not None else _POS_INF
        high_ms = min(high_ms, self.visible_until_ms(now_ms))
        entries = self.by_processed

        def stream_key(entry: IndexEntry) -> tuple[int, str]:
            return (entry.processed_ms, entry.event_id)

        def processed(entry: IndexEntry) -> int:
            return entry.processed_ms

        def wanted(entry: IndexEntry) -> bool:
            if entry.time_ms < floor:
                return False
            clock_ms = entry.processed_ms if by_processed else entry.time_ms
            return (to_ms is None or clock_ms <= to_ms) and (from_ms is None or clock_ms >= from_ms)

        if ascending:
            index = bisect.bisect_left(entries, low_ms, key=processed)
            if after is not None:
                seek = bisect.bisect_left if include_after else bisect.bisect_right
                index = max(index, seek(entries, after, key=stream_key))
            for entry in itertools.islice(entries, index, None):
                if entry.processed_ms > high_ms:
                    return
                if wanted(entry):
                    yield entry
        else:
            index = bisect.bisect_right(entries, high_ms, key=processed) - 1
            if after is not None:
                seek = bisect.bisect_right if include_after else bisect.bisect_left
                index = min(index, seek(entries, after, key=stream_key) - 1)
            while index >= 0:
                entry = entries[index]
                if entry.processed_ms < low_ms:
                    return
                if wanted(entry):
                    yield entry
                index -= 1

    # --- /events order ----------------------------------------------------------------------------------

    def walk_time(
        self,
        *,
        from_ms: int | None,
        to_ms: int | None,
        after: tuple[int, str] | None,
        newest_first: bool,
        now_ms: int,
        matches: Callable[[IndexEntry], bool] | None = None,
        include_after: bool = False,
    ) -> Iterator[IndexEntry]:
        """
        Served events with ``from_ms <= time_ms <= to_ms`` by ``(time_us, event_id)``, beyond ``after``.

        :param after: a ``(time_us, event_id)`` position, or None for the start of the walk.
        :param newest_first: walk by decreasing ``(time_us, event_id)`` (the ``/events`` order).
        :param matches: extra predicate (the ``/events`` filters).
        :param include_after: start at ``after`` itself instead of just beyond it.
        """
        low_us = max(from_ms if from_ms is not None else _NEG_INF, self.floor_ms(now_ms)) * 1000
        high_us = (to_ms + 1) * 1000 if to_ms is not None else _POS_INF  # exclusive
        entries = self.by_time
        visible_until = self.visible_until_ms(now_ms)

        def time_key(entry: IndexEntry) -> tuple[int, str]:
            return (entry.time_us, entry.event_id)

        def time_us(entry: IndexEntry) -> int:
            return entry.time_us

        def wanted(entry: IndexEntry) -> bool:
            if entry.processed_ms > visible_until:
                return False
            return matches is None or matches(entry)

        if newest_first:
            index = bisect.bisect_left(entries, high_us, key=time_us) - 1
            if after is not None:
                seek = bisect.bisect_right if include_after else bisect.bisect_left
                index = min(index, seek(entries, after, key=time_key) - 1)
            while index >= 0:
                entry = entries[index]
                if entry.time_us < low_us:
                    return
                if wanted(entry):
                    yield entry
                index -= 1
        else:
            index = bisect.bisect_left(entries, low_us, key=time_us)
            if after is not None:
                seek = bisect.bisect_left if include_after else bisect.bisect_right
                index = max(index, seek(entries, after, key=time_key))
            for entry in itertools.islice(entries, index, None):
                if entry.time_us >= high_us:
                    return
                if wanted(entry):
                    yield entry

    def between(self, start_ms: int, end_ms: int, now_ms: int, clock: str | None = None) -> list[IndexEntry]:
        """
        Served events with ``start_ms <= clock < end_ms``, sorted by ``(processed_ms, event_id)``.

        :param clock: ``time`` or ``processed``; default ``config.filter_clock`` (what the stream returns).
        """
        if (clock or self.config.filter_clock) == "processed":
            lo = bisect.bisect_left(self.by_processed, start_ms, key=lambda entry: entry.processed_ms)
            hi = bisect.bisect_left(self.by_processed, end_ms, key=lambda entry: entry.processed_ms)
            return [entry for entry in self.by_processed[lo:hi] if self.is_served(entry, now_ms)]
        low_us, high_us = start_ms * 1000, end_ms * 1000
        lo = bisect.bisect_left(self.by_time, low_us, key=lambda entry: entry.time_us)
        hi = bisect.bisect_left(self.by_time, high_us, key=lambda entry: entry.time_us)
        chosen = [entry for entry in self.by_time[lo:hi] if self.is_served(entry, now_ms)]
        chosen.sort(key=lambda entry: (entry.processed_ms, entry.event_id))
        return chosen


def generate_events(config: SimulatorConfig) -> list[dict[str, Any]]:
    """
    Every event of ``config`` (generated plus ``extra_events``) as full stream-form dicts.

    Deterministic: the same config gives identical events, byte for byte once JSON-dumped. Sorted by
    ``(processedAt, id)``. Ignores retention and visibility (those depend on the wall clock).
    """
    store = EventStore(config, cache_size=0)
    return [store.event(entry) for entry in store.by_processed]


def iter_actions() -> Iterable[dict[str, Any]]:
    """The ``/event-actions`` items for every action the generator uses."""
    for action in ACTIONS:
        yield {
            "id": action.action_id,
            "type": "event-actions",
            "attributes": {"displayName": action.display_name, "groupDisplayName": action.group_display_name},
        }


def ids_of(entries: Sequence[IndexEntry]) -> list[str]:
    """Event ids of index entries, in order."""
    return [entry.event_id for entry in entries]
