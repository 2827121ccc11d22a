"""Tests that the schema and docs/leef-mapping.md agree."""

from __future__ import annotations

import re

from airflow_provider_atlassian_qradar.leef import SCHEMA_KEYS, is_schema_key
from tests.leef.reference import documented_keys, mapping_section


class TestSchemaDocumentation:
    def test_every_fixed_key_is_documented_and_nothing_else(self) -> None:
        found = documented_keys()
        fixed = [key for key in found if not re.fullmatch(r"(container|context)N[A-Za-z]+", key)]
        assert sorted(fixed) == sorted(SCHEMA_KEYS)

    def test_dynamic_keys_are_documented(self) -> None:
        text = mapping_section()
        for field in ("Id", "Type", "Name", "LinkSelf", "LinkAlt", "Attributes"):
            assert f"`containerN{field}`" in text and f"`contextN{field}`" in text
        assert is_schema_key("container12LinkAlt") and is_schema_key("context1Attributes")
        assert not is_schema_key("container0Id") and not is_schema_key("containerXId")
