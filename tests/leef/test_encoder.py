"""Tests of the LEEF encoder: the wire format, the schema mapping, escaping in place, the options bundle."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_atlassian_qradar import __version__
from airflow_provider_atlassian_qradar.leef import (
    CORE_KEYS,
    CORE_VALUE_MAX_BYTES,
    DEFAULT_SEVERITY,
    LeefOptions,
    format_event,
    is_schema_key,
)
from sandbox.leef_parser import parse_leef
from tests.leef.reference import (
    API_EXAMPLE,
    FUZZ,
    HEADER_PREFIX,
    KEY_RE,
    assert_single_safe_line,
    documented_keys,
    event_with,
    events,
    reference_attributes,
)


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
        documented = documented_keys()
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


class TestEncode:
    @FUZZ
    @given(event=events, max_bytes=st.integers(512, 8192))
    def test_flag_says_whether_the_budget_trimmed_the_line(self, event: dict[str, Any], max_bytes: int) -> None:
        options = LeefOptions(max_bytes=max_bytes, org_id="org-1")
        line, truncated = options.encode(event)
        assert line == options.format(event) == format_event(event, max_bytes=max_bytes, org_id="org-1")
        assert truncated is ("truncated" in parse_leef(line)[1])

    def test_untrimmed_and_trimmed_lines(self) -> None:
        assert LeefOptions().encode(API_EXAMPLE)[1] is False
        big = event_with(container=[{"id": "c", "attributes": {"name": "x" * 2000}}])
        line, truncated = LeefOptions(max_bytes=1024).encode(big)
        assert truncated is True
        assert parse_leef(line)[1]["truncated"].startswith("container1Attributes,")
