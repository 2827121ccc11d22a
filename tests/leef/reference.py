"""The shared reference for the LEEF tests: the API example, an independent statement of the mapping, strategies."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar import __version__
from airflow_provider_atlassian_qradar.leef import (
    ACTION_CATEGORIES,
    CORE_VALUE_MAX_BYTES,
    DEFAULT_SEVERITY,
    escape_value,
)

KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029", "\x00")
SURROGATES = re.compile("[\ud800-\udfff]")
HEADER_PREFIX = f"LEEF:2.0|Atlassian|Organization Audit Log|{__version__}|"

# Example A of the API reference (section 3), in stream form.
API_EXAMPLE: dict[str, Any] = {
    "id": "7bdedaaf-1a46-4631-b78e-9cbcdbcf556a",
    "type": "events",
    "attributes": {
        "time": "2021-04-01T23:20:17.230Z",
        "processedAt": "2021-04-01T23:20:18.001Z",
        "action": "api_token_created",
        "actor": {
            "id": "5b86be50b8e3cb5895860d6d",
            "name": "Jane Admin",
            "email": "jane@example.com",
            "auth": {"authType": "api-token", "tokenId": "t-1", "tokenLabel": "ci"},
            "links": {
                "self": "https://api.atlassian.com/users/5b86be50b8e3cb5895860d6d/manage/profile",
                "alt": "https://admin.atlassian.com/o/ORG/users/5b86be50b8e3cb5895860d6d",
            },
        },
        "context": [],
        "container": [
            {
                "id": "ORG",
                "type": "orgs",
                "attributes": {"name": "acme"},
                "links": {
                    "self": "https://api.atlassian.com/admin/v1/orgs/ORG",
                    "alt": "https://admin.atlassian.com/o/ORG",
                },
            }
        ],
        "location": {
            "ip": "201.202.14.26",
            "countryName": "Costa Rica",
            "regionName": "Provincia de Cartago",
            "city": "Cartago",
        },
    },
    "links": {"self": "https://api.atlassian.com/admin/v1/orgs/ORG/events/7bdedaaf-1a46-4631-b78e-9cbcdbcf556a"},
    "message": {"content": "Created admin API key", "format": "simple"},
}


def event_with(**attributes: Any) -> dict[str, Any]:
    """A copy of API_EXAMPLE with some ``attributes`` members replaced (None removes one)."""
    event = json.loads(json.dumps(API_EXAMPLE))
    for name, value in attributes.items():
        if value is None:
            event["attributes"].pop(name, None)
        else:
            event["attributes"][name] = value
    return event


# --- An independent, table-driven statement of the mapping (docs/leef-mapping.md) --------------------------
SCALAR_PATHS: dict[str, tuple[str, ...]] = {
    "eventType": ("type",),
    "msg": ("message", "content"),
    "msgFormat": ("message", "format"),
    "country": ("attributes", "location", "countryName"),
    "region": ("attributes", "location", "regionName"),
    "city": ("attributes", "location", "city"),
    "geo": ("attributes", "location", "geo"),
    "authType": ("attributes", "actor", "auth", "authType"),
    "tokenId": ("attributes", "actor", "auth", "tokenId"),
    "tokenLabel": ("attributes", "actor", "auth", "tokenLabel"),
    "onBehalfOfId": ("attributes", "actor", "onBehalfOf", "id"),
    "onBehalfOfName": ("attributes", "actor", "onBehalfOf", "name"),
    "onBehalfOfEmail": ("attributes", "actor", "onBehalfOf", "email"),
    "appId": ("attributes", "actor", "app", "id"),
    "appType": ("attributes", "actor", "app", "type"),
    "actorLinkSelf": ("attributes", "actor", "links", "self"),
    "actorLinkAlt": ("attributes", "actor", "links", "alt"),
    "actorPicture": ("attributes", "actor", "picture"),
    "eventLink": ("links", "self"),
}
KNOWN_MEMBERS: dict[tuple[str, ...], frozenset[str]] = {
    (): frozenset({"id", "type", "attributes", "links", "message"}),
    ("attributes",): frozenset({"time", "processedAt", "action", "actor", "context", "container", "location"}),
    ("attributes", "actor"): frozenset({"id", "name", "email", "auth", "onBehalfOf", "app", "links", "picture"}),
    ("attributes", "actor", "auth"): frozenset({"authType", "tokenId", "tokenLabel"}),
    ("attributes", "actor", "onBehalfOf"): frozenset({"id", "name", "email"}),
    ("attributes", "actor", "app"): frozenset({"id", "type", "attributes"}),
    ("attributes", "actor", "links"): frozenset({"self", "alt"}),
    ("attributes", "location"): frozenset({"ip", "countryName", "regionName", "city", "geo"}),
    ("links",): frozenset({"self"}),
    ("message",): frozenset({"content", "format"}),
}


def clean(text: str) -> str:
    return SURROGATES.sub("\ufffd", text)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return clean(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def member(event: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(event, dict):
            return None
        event = event.get(name)
    return event


def reference_time(value: Any, zone: str) -> tuple[int, str] | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        epoch_ms = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
    except OverflowError:
        return None
    if not 10**12 <= epoch_ms < 10**13:
        return None
    return epoch_ms, moment.astimezone(ZoneInfo(zone)).isoformat(timespec="milliseconds")


def reference_attributes(event: dict[str, Any], zone: str = "UTC", org_id: str | None = None) -> dict[str, Any]:
    """What parse_leef(format_event(event)) must return for an untruncated event."""
    expected: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for path, known in KNOWN_MEMBERS.items():
        obj = member(event, path)
        if obj is None:
            continue
        if not isinstance(obj, dict):
            extra[".".join(path)] = obj
            continue
        for name, value in obj.items():
            if name not in known and value is not None:
                extra[".".join((*path, name))] = value
    attributes: dict[str, Any] = event["attributes"] if isinstance(event.get("attributes"), dict) else {}
    action = attributes.get("action")
    action_text = "" if action is None else action if isinstance(action, str) else as_text(action)
    sanitised = re.sub(r"[^A-Za-z0-9._-]", "_", action_text)[:255] or "unknown"
    if action_text and action_text != sanitised:
        expected["actionRaw"] = clean(action_text)
    expected["cat"] = ACTION_CATEGORIES.get(action_text, "Other")
    expected["sev"] = str(DEFAULT_SEVERITY.get(action_text, 5))
    for key, leef_key in (("time", "eventTime"), ("processedAt", "processedAt")):
        raw = attributes.get(key)
        if raw is None:
            continue
        parsed = reference_time(raw, zone)
        if parsed is None:
            expected[leef_key + "Raw"] = as_text(raw)
        else:
            expected[leef_key] = parsed[1]
            if key == "time":
                expected["devTime"] = str(parsed[0])
    actor = member(event, ("attributes", "actor"))
    actor = actor if isinstance(actor, dict) else {}
    user = actor.get("email")
    if user is None or user == "":
        user = actor.get("name")
    for key, value in (
        ("eventId", event.get("id")),
        ("actorId", actor.get("id")),
        ("usrName", user),
        ("accountName", actor.get("name")),
    ):
        if value is not None:
            fits = len(escape_value(as_text(value)).encode()) <= CORE_VALUE_MAX_BYTES
            expected[key if fits else key + "Raw"] = as_text(value)
    ip = member(event, ("attributes", "location", "ip"))
    if ip is not None:
        valid = isinstance(ip, str) and len(ip) <= 45 and "%" not in ip
        if valid:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                valid = False
        expected["src" if valid else "srcRaw"] = as_text(ip)
    if org_id is not None:
        expected["orgId"] = org_id
    for key, path in SCALAR_PATHS.items():
        value = member(event, path)
        if value is not None:
            expected[key] = as_text(value)
    app_attributes = member(event, ("attributes", "actor", "app", "attributes"))
    if app_attributes is not None and app_attributes != {}:
        expected["appAttributes"] = as_text(app_attributes)
    for label in ("container", "context"):
        items = attributes.get(label)
        if items is None:
            continue
        if not isinstance(items, list):
            extra[f"attributes.{label}"] = items
            continue
        for index, item in enumerate(items):
            prefix, item_path = f"{label}{index + 1}", f"attributes.{label}[{index}]"
            if item is None:
                continue
            if not isinstance(item, dict):
                extra[item_path] = item
                continue
            for name, value in item.items():
                if name not in {"id", "type", "attributes", "links"} and value is not None:
                    extra[f"{item_path}.{name}"] = value
            for field, value in (("Id", item.get("id")), ("Type", item.get("type"))):
                if value is not None:
                    expected[prefix + field] = as_text(value)
            item_attributes = item.get("attributes")
            if isinstance(item_attributes, dict) and item_attributes.get("name") is not None:
                expected[prefix + "Name"] = as_text(item_attributes["name"])
            links = item.get("links")
            if links is not None and not isinstance(links, dict):
                extra[item_path + ".links"] = links
            elif links is not None:
                for name, value in links.items():
                    if name not in {"self", "alt"} and value is not None:
                        extra[f"{item_path}.links.{name}"] = value
                for field, name in (("LinkSelf", "self"), ("LinkAlt", "alt")):
                    if links.get(name) is not None:
                        expected[prefix + field] = as_text(links[name])
            if item_attributes is not None and item_attributes != {}:
                expected[prefix + "Attributes"] = as_text(item_attributes)
    if extra:
        expected["extra"] = as_text(extra)
    return expected


# --- Strategies ----------------------------------------------------------------------------------------------
HOSTILE = [
    "x\nLEEF:2.0|Fake|X|1|user_login|x09|usrName=root",
    "a\tsev=1",
    "back\\slash\\n",
    "\r\n\x00\x7f\x85\u2028\u2029\ufeff",
    "\ud800lone\udfff",
    "é漢字🙂",
    "=|^",
]
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)
texts = st.one_of(
    st.text(max_size=30),
    any_text,
    st.sampled_from(HOSTILE),
    st.just("A" * 100_000 + "\n" + "é" * 20),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=8,
)
scalars = st.one_of(texts, texts, json_values)
times = st.one_of(
    st.datetimes(min_value=datetime(2001, 9, 10), max_value=datetime(2286, 1, 1), timezones=st.just(timezone.utc)).map(
        lambda moment: moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ),
    st.datetimes(
        min_value=datetime(2001, 9, 10),
        max_value=datetime(2286, 1, 1),
        timezones=st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=-4)), timezone(timedelta(hours=5, minutes=30))]
        ),
    ).map(lambda moment: moment.isoformat()),
    st.datetimes(min_value=datetime(2001, 9, 10), max_value=datetime(2286, 1, 1)).map(
        lambda moment: moment.replace(microsecond=0).isoformat() + "Z"
    ),
    scalars,
)


def with_unknown(known: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """A schema object, sometimes with unknown members, sometimes replaced by any JSON value."""
    unknown = st.dictionaries(st.text(min_size=1, max_size=8).map(lambda name: "zz" + name), json_values, max_size=2)
    merged = st.builds(lambda known_part, unknown_part: {**unknown_part, **known_part}, known, unknown)
    return st.one_of(known, known, merged, json_values)


def optional(**members: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=members)


links = with_unknown(optional(self=scalars, alt=scalars))
objects = with_unknown(
    optional(
        id=scalars,
        type=st.sampled_from(["orgs", "sites", "groups", "users"]) | scalars,
        attributes=st.dictionaries(any_text, json_values, max_size=3) | json_values,
        links=links,
    )
)
events = with_unknown(
    optional(
        id=st.uuids().map(str) | scalars,
        type=st.just("events") | scalars,
        attributes=with_unknown(
            optional(
                time=times,
                processedAt=times,
                action=st.sampled_from(["api_token_created", "user_login", "user_added_to_group", ""]) | scalars,
                actor=with_unknown(
                    optional(
                        id=scalars,
                        name=scalars,
                        email=scalars,
                        auth=with_unknown(optional(authType=scalars, tokenId=scalars, tokenLabel=scalars)),
                        onBehalfOf=with_unknown(optional(id=scalars, name=scalars, email=scalars)),
                        app=with_unknown(optional(id=scalars, type=scalars, attributes=json_values)),
                        links=links,
                        picture=scalars,
                    )
                ),
                context=st.lists(objects | st.none(), max_size=3) | json_values,
                container=st.lists(objects, max_size=3) | json_values,
                location=with_unknown(
                    optional(
                        ip=st.ip_addresses().map(str) | scalars,
                        countryName=scalars,
                        regionName=scalars,
                        city=scalars,
                        geo=scalars,
                    )
                ),
            )
        ),
        links=with_unknown(optional(self=scalars)),
        message=with_unknown(optional(content=scalars, format=scalars)),
    )
).filter(lambda event: isinstance(event, dict))

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_single_safe_line(line: str) -> None:
    for char in LINE_BREAKS:
        assert char not in line
    line.encode("utf-8", errors="strict")
    assert line.startswith(HEADER_PREFIX)
    assert not line.endswith("\t")


MAPPING_DOC = Path(__file__).resolve().parents[2] / "docs" / "leef-mapping.md"


def mapping_section() -> str:
    """The whole of docs/leef-mapping.md (the README links to it)."""
    text = MAPPING_DOC.read_text()
    assert text.startswith("# LEEF mapping\n")
    return text


def documented_keys() -> list[str]:
    """The keys of the mapping tables, in table order (containerNId etc. for dynamic keys)."""
    return re.findall(r"^\| `([A-Za-z][A-Za-z0-9_]*)` \|", mapping_section(), re.MULTILINE)
