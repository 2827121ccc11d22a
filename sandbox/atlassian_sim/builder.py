"""What generated events are made of (actions, products, people, hostile strings) and how one is materialised."""

from __future__ import annotations

import bisect
import itertools
import random
import unicodedata
import uuid
from typing import Any, NamedTuple

from sandbox.atlassian_sim.config import SimulatorConfig
from sandbox.atlassian_sim.index import FLAG_HOSTILE, PRECISION_MASK, PRECISION_MILLIS, IndexEntry, format_time

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


class Pools:
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


class EventBuilder:
    """Materialise one generated event from its index entry; pure function of (config, entry)."""

    def __init__(self, config: SimulatorConfig, pools: Pools) -> None:
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
            "time": format_time(entry.time_us, entry.flags & PRECISION_MASK),
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
