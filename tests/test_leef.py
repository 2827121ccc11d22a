"""Tests of the LEEF 2.0 encoder: the wire format, escaping, the schema, the frame budget and parsing."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar import __version__
from airflow_provider_atlassian_qradar.leef import (
    ACTION_CATEGORIES,
    CORE_KEYS,
    CORE_VALUE_MAX_BYTES,
    DEFAULT_SEVERITY,
    SCHEMA_KEYS,
    LeefOptions,
    escape_value,
    format_event,
    is_schema_key,
    parse_leef,
    unescape_value,
)
from airflow_provider_atlassian_qradar.leef import _cut_escaped as cut_escaped

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


class TestFormatEventProperties:
    @FUZZ
    @given(event=events, time_zone=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata"]))
    def test_one_safe_line_that_round_trips(self, event: dict[str, Any], time_zone: str) -> None:
        line = format_event(event, time_zone=time_zone, max_bytes=10_000_000, org_id="org-1")
        assert_single_safe_line(line)
        header, attributes = parse_leef(line)  # raises on duplicate keys
        assert header[:4] == ["LEEF:2.0", "Atlassian", "Organization Audit Log", __version__]
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,255}", header[4])
        assert header[5] == "x09"
        assert "truncated" not in attributes
        assert attributes == reference_attributes(event, time_zone, "org-1")
        emitted = list(attributes)
        core = [key for key in emitted if key in CORE_KEYS]
        assert emitted[: len(core)] == core == [key for key in CORE_KEYS if key in core]
        assert all(KEY_RE.match(key) and is_schema_key(key) for key in emitted)
        # Custom keys follow the order of the documented table (containerN…/contextN… as one block each).
        documented = TestSchemaDocumentation.documented_keys()
        blocks = [re.sub(r"^(container|context)[0-9]+[A-Za-z]+$", r"\1NId", key) for key in emitted]
        ranks = [documented.index(block) for block in blocks]
        assert ranks == sorted(ranks)

    @FUZZ
    @given(event=events, max_bytes=st.integers(512, 8192))
    def test_fits_the_budget_and_lists_what_it_trimmed(self, event: dict[str, Any], max_bytes: int) -> None:
        line = format_event(event, max_bytes=max_bytes)
        assert_single_safe_line(line)
        _, attributes = parse_leef(line)
        if len(line.encode()) > max_bytes:
            # The documented overrun: header + core keys (+ the truncated list) alone exceed the budget.
            assert set(attributes) <= {*CORE_KEYS, "truncated"}
        expected = reference_attributes(event)
        listed = attributes.pop("truncated", "")
        trimmed = [name for name in listed.split(",") if name and not name.startswith("+")]
        overflow = sum(int(name[1:]) for name in listed.split(",") if name.startswith("+"))
        for key in CORE_KEYS:
            assert attributes.get(key) == expected.get(key)
        missing = [key for key in expected if key not in attributes]
        # "+N" at the end of truncated counts the trimmed keys the list had no room to name: a value cut short
        # or a key dropped that the list does not name must be one of those N.
        unlisted = [key for key in missing if key not in trimmed]
        for key, value in attributes.items():
            if key in trimmed:
                assert expected[key].startswith(value)
            elif value != expected[key]:
                assert expected[key].startswith(value), key
                unlisted.append(key)
        assert len(unlisted) <= overflow, (unlisted, listed)
        assert all(is_schema_key(key) for key in trimmed)


class TestFormatEvent:
    def test_api_example(self) -> None:
        line = format_event(API_EXAMPLE, org_id="ORG")
        header, attributes = parse_leef(line)
        assert line.startswith(f"{HEADER_PREFIX}api_token_created|x09|devTime=1617319217230\tcat=ApiCredentials")
        assert header[4] == "api_token_created"
        assert attributes == {
            "devTime": "1617319217230",
            "cat": "ApiCredentials",
            "sev": "6",
            "eventId": "7bdedaaf-1a46-4631-b78e-9cbcdbcf556a",
            "actorId": "5b86be50b8e3cb5895860d6d",
            "usrName": "jane@example.com",
            "accountName": "Jane Admin",
            "src": "201.202.14.26",
            "eventTime": "2021-04-01T23:20:17.230+00:00",
            "processedAt": "2021-04-01T23:20:18.001+00:00",
            "eventType": "events",
            "orgId": "ORG",
            "msg": "Created admin API key",
            "msgFormat": "simple",
            "country": "Costa Rica",
            "region": "Provincia de Cartago",
            "city": "Cartago",
            "authType": "api-token",
            "tokenId": "t-1",
            "tokenLabel": "ci",
            "actorLinkSelf": "https://api.atlassian.com/users/5b86be50b8e3cb5895860d6d/manage/profile",
            "actorLinkAlt": "https://admin.atlassian.com/o/ORG/users/5b86be50b8e3cb5895860d6d",
            "eventLink": "https://api.atlassian.com/admin/v1/orgs/ORG/events/7bdedaaf-1a46-4631-b78e-9cbcdbcf556a",
            "container1Id": "ORG",
            "container1Type": "orgs",
            "container1Name": "acme",
            "container1LinkSelf": "https://api.atlassian.com/admin/v1/orgs/ORG",
            "container1LinkAlt": "https://admin.atlassian.com/o/ORG",
            "container1Attributes": '{"name":"acme"}',
        }

    def test_forged_line_stays_inside_one_value(self) -> None:
        forged = "x\nLEEF:2.0|Fake|X|1|user_login|x09|usrName=root\tsev=1"
        event = event_with(actor={"id": "a-1", "name": forged})
        line = format_event(event)
        assert "\n" not in line
        escaped = "x\\nLEEF:2.0|Fake|X|1|user_login|x09|usrName=root\\tsev=1"
        assert line.count("\tusrName=") == 1
        # The forged text appears only escaped, inside the usrName and accountName values.
        assert line.count("usrName=root") == line.count(escaped) == 2
        assert f"\tusrName={escaped}\taccountName={escaped}\t" in line
        _, attributes = parse_leef(line)
        assert attributes["usrName"] == attributes["accountName"] == forged
        assert attributes["sev"] == "6"

    def test_unknown_members_go_to_extra_never_to_keys(self) -> None:
        event = event_with(**{"sev": 1, "evil\tkey": "v"})
        event["usrName"] = "root"
        event["attributes"]["actor"]["department"] = "ops"
        _, attributes = parse_leef(format_event(event))
        assert attributes["sev"] == "6"
        assert json.loads(attributes["extra"]) == {
            "usrName": "root",
            "attributes.sev": 1,
            "attributes.evil\tkey": "v",
            "attributes.actor.department": "ops",
        }

    @pytest.mark.parametrize(
        ("ip", "key"),
        [
            ("201.202.14.26", "src"),
            ("2001:db8::1", "src"),
            ("::ffff:192.0.2.1", "src"),
            ("fe80::1%eth0", "srcRaw"),
            ("999.1.1.1", "srcRaw"),
            ("203.0.113.10\tsev=1", "srcRaw"),
            ("", "srcRaw"),
        ],
    )
    def test_src_only_for_valid_ip(self, ip: str, key: str) -> None:
        event = event_with(location={"ip": ip})
        _, attributes = parse_leef(format_event(event))
        assert attributes[key] == ip
        assert ({"src", "srcRaw"} - {key}).isdisjoint(attributes)

    def test_non_string_ip_goes_to_src_raw(self) -> None:
        _, attributes = parse_leef(format_event(event_with(location={"ip": 17})))
        assert attributes["srcRaw"] == "17"

    @pytest.mark.parametrize(
        ("time", "epoch_ms"),
        [
            ("2021-04-03T06:12:11.117451Z", 1617430331117),
            ("2021-04-01T22:55:19.008Z", 1617317719008),
            ("2021-04-01T22:55:18Z", 1617317718000),
            ("2021-04-01T22:55:18.999999Z", 1617317718999),
            ("2021-04-02T00:55:18.5+02:00", 1617317718500),
            ("2021-04-01T22:55:18", 1617317718000),
        ],
    )
    def test_lenient_timestamps(self, time: str, epoch_ms: int) -> None:
        _, attributes = parse_leef(format_event(event_with(time=time)))
        assert attributes["devTime"] == str(epoch_ms)
        assert "eventTimeRaw" not in attributes

    @pytest.mark.parametrize("time", ["yesterday", "1617317718000", "1970-01-01T00:00:00Z", ""])
    def test_unusable_time_goes_to_event_time_raw(self, time: str) -> None:
        _, attributes = parse_leef(format_event(event_with(time=time)))
        assert "devTime" not in attributes
        assert "eventTime" not in attributes
        assert attributes["eventTimeRaw"] == time

    @pytest.mark.parametrize(
        ("time_zone", "event_time", "processed_at"),
        [
            ("UTC", "2021-04-01T23:20:17.230+00:00", "2021-04-01T23:20:18.001+00:00"),
            ("Europe/Berlin", "2021-04-02T01:20:17.230+02:00", "2021-04-02T01:20:18.001+02:00"),
            ("America/New_York", "2021-04-01T19:20:17.230-04:00", "2021-04-01T19:20:18.001-04:00"),
            ("Asia/Kolkata", "2021-04-02T04:50:17.230+05:30", "2021-04-02T04:50:18.001+05:30"),
        ],
    )
    def test_time_zone_rendering(self, time_zone: str, event_time: str, processed_at: str) -> None:
        _, attributes = parse_leef(format_event(API_EXAMPLE, time_zone=time_zone))
        assert attributes["eventTime"] == event_time
        assert attributes["processedAt"] == processed_at
        assert attributes["devTime"] == "1617319217230"

    def test_time_zone_across_dst_change(self) -> None:
        # Europe/Berlin switched to CEST at 2021-03-28T01:00:00Z.
        before = parse_leef(format_event(event_with(time="2021-03-28T00:59:59.999Z"), time_zone="Europe/Berlin"))
        after = parse_leef(format_event(event_with(time="2021-03-28T01:00:00.000Z"), time_zone="Europe/Berlin"))
        assert before[1]["eventTime"] == "2021-03-28T01:59:59.999+01:00"
        assert after[1]["eventTime"] == "2021-03-28T03:00:00.000+02:00"

    def test_category_and_severity_sources(self) -> None:
        _, default = parse_leef(format_event(API_EXAMPLE))
        assert (default["cat"], default["sev"]) == ("ApiCredentials", "6")
        assert "actionGroup" not in default
        _, configured = parse_leef(
            format_event(
                API_EXAMPLE,
                action_group_names={"api_token_created": "API tokens"},
                severity_overrides={"api_token_created": 9},
            )
        )
        # cat is the built-in category whatever /event-actions says: QRadar's QID map keys on it
        assert (configured["cat"], configured["sev"], configured["actionGroup"]) == (
            "ApiCredentials",
            "9",
            "API tokens",
        )
        _, unknown = parse_leef(format_event(event_with(action="brand_new_action")))
        assert (unknown["cat"], unknown["sev"]) == ("Other", "5")

    @pytest.mark.parametrize(("override", "sev"), [(42, "10"), (0, "1"), (-3, "1"), (10, "10"), ("7", "7")])
    def test_severity_override_is_clamped(self, override: Any, sev: str) -> None:
        line = format_event(API_EXAMPLE, severity_overrides={"api_token_created": override})
        assert parse_leef(line)[1]["sev"] == sev

    def test_bad_severity_override_names_the_action(self) -> None:
        with pytest.raises(ValueError, match="api_token_created"):
            format_event(API_EXAMPLE, severity_overrides={"api_token_created": "high"})  # type: ignore[dict-item]

    def test_default_severity_table_is_in_range(self) -> None:
        assert {"user_login", "api_token_created", "api_key_created", "user_added_to_group"} <= set(DEFAULT_SEVERITY)
        assert {"group_created", "policy_updated", "user_deactivated", "audit_log_exported"} <= set(DEFAULT_SEVERITY)
        assert "product_access_granted" in DEFAULT_SEVERITY
        assert all(1 <= severity <= 10 for severity in DEFAULT_SEVERITY.values())

    @pytest.mark.parametrize(
        ("action", "event_id"),
        [
            ("user_login", "user_login"),
            ("user login|x", "user_login_x"),
            ("évènement.créé", "_v_nement.cr__"),
            ("a" * 300, "a" * 255),
            ("", "unknown"),
            (None, "unknown"),
        ],
    )
    def test_event_id_sanitised(self, action: str | None, event_id: str) -> None:
        line = format_event(event_with(action=action) if action is not None else event_with(action=None))
        header, attributes = parse_leef(line)
        assert header[4] == event_id
        if action and action != event_id:
            assert attributes["actionRaw"] == action
        else:
            assert "actionRaw" not in attributes

    def test_none_values_are_omitted_and_booleans_numbers_objects_rendered(self) -> None:
        event = event_with(actor={"id": 5, "name": None, "email": True, "picture": {"b": 1, "a": [1.5, None]}})
        _, attributes = parse_leef(format_event(event))
        assert attributes["actorId"] == "5"
        assert attributes["usrName"] == "true"
        assert "accountName" not in attributes
        assert attributes["actorPicture"] == '{"a":[1.5,null],"b":1}'

    def test_long_core_value_moves_to_raw_key(self) -> None:
        name = "n" * (CORE_VALUE_MAX_BYTES + 1)
        _, attributes = parse_leef(format_event(event_with(actor={"id": "a-1", "name": name})))
        assert "accountName" not in attributes and "usrName" not in attributes
        assert attributes["accountNameRaw"] == attributes["usrNameRaw"] == name

    def test_mapping_that_is_not_a_dict_is_accepted(self) -> None:
        from types import MappingProxyType

        assert format_event(MappingProxyType(API_EXAMPLE)) == format_event(API_EXAMPLE)

    def test_non_object_event_is_rejected(self) -> None:
        with pytest.raises(TypeError, match="JSON object"):
            format_event(["not", "an", "event"])  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"max_bytes": 511}, "max_bytes=511"),
            ({"time_zone": "Mars/Olympus"}, "IANA"),
            ({"product_version": "1.0|evil"}, "product_version"),
            ({"action_group_names": {"api_token_created": ""}}, "action_group_names"),
        ],
    )
    def test_bad_arguments_name_the_cause(self, arguments: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=re.escape(message)):
            format_event(API_EXAMPLE, **arguments)
        with pytest.raises(ValueError, match=re.escape(message)):
            LeefOptions(**arguments)

    def test_options_bundle_matches_keyword_call(self) -> None:
        options = LeefOptions(time_zone="Europe/Berlin", max_bytes=1024, org_id="ORG", product_version="9.9")
        assert options.format(API_EXAMPLE) == format_event(
            API_EXAMPLE, time_zone="Europe/Berlin", max_bytes=1024, org_id="ORG", product_version="9.9"
        )


class TestFrameBudget:
    def big_event(self) -> dict[str, Any]:
        event = json.loads(json.dumps(API_EXAMPLE))
        event["unknownTopLevel"] = "u" * 400
        event["message"]["content"] = "m" * 400
        event["attributes"]["container"][0]["attributes"]["siteUrl"] = "s" * 400
        return event

    def test_least_important_values_go_first(self) -> None:
        event = self.big_event()
        full = format_event(event)
        budget = len(full.encode()) - 300
        _, attributes = parse_leef(format_event(event, max_bytes=budget))
        assert attributes["truncated"] == "extra"
        assert 0 < len(attributes["extra"]) < 400
        assert attributes["msg"] == "m" * 400

        _, attributes = parse_leef(format_event(event, max_bytes=len(full.encode()) - 900))
        assert attributes["truncated"] == "extra,container1Attributes,msg"
        assert "extra" not in attributes and "container1Attributes" not in attributes
        assert set(attributes["msg"]) == {"m"}
        assert attributes["eventLink"] == API_EXAMPLE["links"]["self"]

    def test_core_keys_survive_the_smallest_budget(self) -> None:
        line = format_event(self.big_event(), max_bytes=512)
        assert len(line.encode()) <= 512
        _, attributes = parse_leef(line)
        expected = reference_attributes(API_EXAMPLE)
        for key in CORE_KEYS:
            assert attributes[key] == expected[key]
        assert "truncated" in attributes

    def test_ids_and_timestamps_are_dropped_whole_not_cut(self) -> None:
        line = format_event(self.big_event(), max_bytes=512)
        _, attributes = parse_leef(line)
        for key in ("eventTime", "processedAt", "tokenId", "container1Id"):
            assert key not in attributes or attributes[key] == reference_attributes(API_EXAMPLE)[key]

    def test_cut_never_splits_an_escape_or_a_character(self) -> None:
        event = event_with()
        event["message"]["content"] = "\n\\é🙂\u2028" * 200
        for budget in range(700, 1000, 7):
            line = format_event(event, max_bytes=budget)
            assert len(line.encode()) <= budget
            msg = parse_leef(line)[1].get("msg", "")  # unescape raises on a split escape
            assert ("\n\\é🙂\u2028" * 200).startswith(msg)

    def test_oversized_core_is_emitted_anyway(self) -> None:
        event = event_with(action="a" * 255, actor={"id": "i" * 255, "name": "n" * 255, "email": "e" * 250})
        line = format_event(event, max_bytes=512)
        assert len(line.encode()) > 512
        _, attributes = parse_leef(line)
        assert attributes["accountName"] == "n" * 255
        assert "msg" not in attributes
        assert "msg" in attributes["truncated"].split(",")

    def test_truncated_list_is_bounded(self) -> None:
        many = [{"id": f"id-{index}", "type": "sites", "attributes": {"name": "x" * 50}} for index in range(300)]
        line = format_event(event_with(context=many), max_bytes=2048)
        assert len(line.encode()) <= 2048
        listed = parse_leef(line)[1]["truncated"].split(",")
        assert listed[-1].startswith("+")
        assert len(",".join(listed[:-1])) <= 200


class TestEscaping:
    @pytest.mark.parametrize(
        ("raw", "escaped"),
        [
            ("plain = | ^ text", "plain = | ^ text"),
            ("a\\b", "a\\\\b"),
            ("l1\nl2\rl3\tl4", "l1\\nl2\\rl3\\tl4"),
            ("\x00\x01\x1b\x1f\x7f", "\\x00\\x01\\x1b\\x1f\\x7f"),
            ("\x85\u2028\u2029", "\\u0085\\u2028\\u2029"),
            ("\ufeffbom", "\ufeffbom"),
            ("\ud800x\udfff", "\ufffdx\ufffd"),
            ("é漢🙂\xa0", "é漢🙂\xa0"),
        ],
    )
    def test_escape_table(self, raw: str, escaped: str) -> None:
        assert escape_value(raw) == escaped
        escaped.encode("utf-8", errors="strict")

    @given(st.text())
    def test_unescape_reverses_escape(self, raw: str) -> None:
        escaped = escape_value(raw)
        assert "\t" not in escaped and "\n" not in escaped
        assert unescape_value(escaped) == raw

    @given(st.text(alphabet=st.characters(exclude_categories=())))
    def test_any_text_escapes_to_valid_utf8(self, raw: str) -> None:
        escaped = escape_value(raw)
        escaped.encode("utf-8", errors="strict")
        assert unescape_value(escaped) == clean(raw)

    @pytest.mark.parametrize("bad", ["\\", "a\\q", "\\x4", "\\X41", "\\u12g4", "\\xAB"])
    def test_invalid_escape_is_rejected(self, bad: str) -> None:
        with pytest.raises(ValueError, match="escape"):
            unescape_value(bad)

    @given(raw=st.text(alphabet="ab\\\n\t\x01\u2028é🙂", max_size=40), limit=st.integers(0, 120))
    def test_cut_keeps_whole_escapes_and_characters(self, raw: str, limit: int) -> None:
        escaped = escape_value(raw)
        cut = cut_escaped(escaped, limit)
        assert len(cut.encode()) <= limit
        assert escaped.startswith(cut)
        assert raw.startswith(unescape_value(cut))


class TestParseLeef:
    def test_splits_header_and_first_equals(self) -> None:
        header, attributes = parse_leef("LEEF:2.0|V|P|1|E|x09|a=b=c\tk=v|w")
        assert header == ["LEEF:2.0", "V", "P", "1", "E", "x09"]
        assert attributes == {"a": "b=c", "k": "v|w"}

    def test_other_delimiters(self) -> None:
        assert parse_leef("LEEF:2.0|V|P|1|E|^|a=1^b=2")[1] == {"a": "1", "b": "2"}
        assert parse_leef("LEEF:2.0|V|P|1|E|0x5E|a=1^b=2")[1] == {"a": "1", "b": "2"}

    @pytest.mark.parametrize(
        "line",
        ["LEEF:1.0|V|P|1|E|a=b", "LEEF:2.0|V|P|1|E|x09|a=1\ta=2", "LEEF:2.0|V|P|1|E|x09|novalue", "garbage"],
    )
    def test_rejects_malformed_lines(self, line: str) -> None:
        with pytest.raises(ValueError):
            parse_leef(line)


class TestSchemaDocumentation:
    MAPPING_DOC = Path(__file__).resolve().parents[1] / "docs" / "leef-mapping.md"

    @classmethod
    def mapping_section(cls) -> str:
        """The whole of docs/leef-mapping.md (the README links to it)."""
        text = cls.MAPPING_DOC.read_text()
        assert text.startswith("# LEEF mapping\n")
        return text

    @classmethod
    def documented_keys(cls) -> list[str]:
        """The keys of the mapping tables, in table order (containerNId etc. for dynamic keys)."""
        return re.findall(r"^\| `([A-Za-z][A-Za-z0-9_]*)` \|", cls.mapping_section(), re.MULTILINE)

    def test_every_fixed_key_is_documented_and_nothing_else(self) -> None:
        found = self.documented_keys()
        fixed = [key for key in found if not re.fullmatch(r"(container|context)N[A-Za-z]+", key)]
        assert sorted(fixed) == sorted(SCHEMA_KEYS)

    def test_dynamic_keys_are_documented(self) -> None:
        text = self.mapping_section()
        for field in ("Id", "Type", "Name", "LinkSelf", "LinkAlt", "Attributes"):
            assert f"`containerN{field}`" in text and f"`contextN{field}`" in text
        assert is_schema_key("container12LinkAlt") and is_schema_key("context1Attributes")
        assert not is_schema_key("container0Id") and not is_schema_key("containerXId")
