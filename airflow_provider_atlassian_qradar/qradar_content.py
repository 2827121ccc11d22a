"""QRadar content for the Atlassian audit log, generated from the LEEF encoder's own tables, and a command to apply it.

``python -m airflow_provider_atlassian_qradar.qradar_content export [--out DIR]`` writes the pack as JSON;
``python -m airflow_provider_atlassian_qradar.qradar_content apply --host HOST --token-file FILE`` creates it in a
QRadar console through IBM's documented REST endpoints. The pack is built from :mod:`~.leef` (its key schema, its
action table with cat and severity), so it cannot drift from what the encoder emits:

1. a log source type ``Atlassian Organization Audit Log``;
2. a custom event property (regex property, ``property_type`` string) for every custom LEEF key the encoder can
   emit, each with a LEEF expression (the key's name) restricted to that log source type;
3. a QID record for every built-in action, with its severity and a low-level category;
4. a DSM event mapping from (EventID, cat) to that QID record.

Nothing here has been run against a real QRadar: the request shapes follow IBM's API reference pages below and are
enforced by the stub server of ``tests/test_qradar_content.py``.

IBM documentation relied on (QRadar REST API reference, hosted by IBM on GitHub Pages):

- authentication with an authorized service token in the ``SEC`` header, the ``Version`` header selecting the API
  version, and the QRadar-to-API version table:
  https://ibmsecuritydocs.github.io/qradar_api_overview/c_rest_api_getting_started.html
- the ``filter`` parameter of list (GET) requests, used to look objects up before creating them
  (``name="..." and log_source_type_id=42``): https://ibmsecuritydocs.github.io/qradar_api_overview/c_rest_api_filtering.html
  That page says query parameters "must be double URL encoded", while its own examples
  (``?filter=status%3DCLOSED``) are encoded once; this module encodes once, like the examples. Unverified.
- ``POST /api/config/event_sources/log_source_management/log_source_types`` (body ``name``; 201; 422 code 1001
  when the name is in use), and ``GET`` with ``filter``:
  https://ibmsecuritydocs.github.io/qradar_api_13.1/13.1--config-event_sources-log_source_management-log_source_types-POST.html
- ``POST /api/config/event_sources/custom_properties/regex_properties`` (``name``, ``description``,
  ``property_type`` one of string/numeric/ip/port/time, ``use_for_rule_engine``; the response's ``identifier``):
  https://ibmsecuritydocs.github.io/qradar_api_13.1/13.1--config-event_sources-custom_properties-regex_properties-POST.html
- ``POST /api/config/event_sources/custom_properties/property_leef_expressions`` (``regex_property_identifier``,
  ``expression`` = "the key of the corresponding property value from the LEEF payload", ``log_source_type_id``,
  ``enabled``):
  https://ibmsecuritydocs.github.io/qradar_api_14.0/14.0--config-event_sources-custom_properties-property_leef_expressions-POST.html
- ``POST /api/data_classification/qid_records`` (``log_source_type_id``, ``name``, ``description``, ``severity``,
  ``low_level_category_id``; 201):
  https://ibmsecuritydocs.github.io/qradar_api_14.0/14.0--data_classification-qid_records-POST.html
- ``POST /api/data_classification/dsm_event_mappings`` (``log_source_type_id``, ``log_source_event_id``,
  ``log_source_event_category``, ``qid_record_id``; 201; 409 code 1008 for an existing combination):
  https://ibmsecuritydocs.github.io/qradar_api_14.0/14.0--data_classification-dsm_event_mappings-POST.html
- low-level categories 3001 Unknown Authentication, 3012 Web Service Login Succeeded, 3013 Web Service Login
  Failed (high-level category 3000 Authentication: "authentication controls, group, or privilege change"):
  https://www.ibm.com/docs/en/qsip/7.5?topic=categories-authentication and
  https://www.ibm.com/docs/en/qsip/7.5?topic=categories-high-level-event
- the predefined LEEF keys that QRadar normalises itself (no custom property needed):
  https://www.ibm.com/docs/en/dsm?topic=overview-predefined-leef-event-attributes
- EventID (column 1) and cat (column 2) form the key of the QID map:
  https://www.ibm.com/docs/en/dsm?topic=overview-predefined-leef-event-attributes
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from airflow_provider_atlassian_qradar import __version__
from airflow_provider_atlassian_qradar.leef import (
    ACTION_CATEGORIES,
    DEFAULT_SEVERITY,
    SCHEMA_KEYS,
    sanitize_event_id,
)

LOG_SOURCE_TYPE_NAME = "Atlassian Organization Audit Log"
#: The QRadar REST API version requested (``Version`` header); 14.0 is supported from QRadar 7.4.1 to 7.5.0.
DEFAULT_API_VERSION = "14.0"
#: LEEF keys that QRadar normalises into its own fields: they need no custom property.
NORMALIZED_KEYS = frozenset(("devTime", "cat", "sev", "usrName", "src"))
#: containerN*/contextN* keys get properties for the first this-many items of each list.
DEFAULT_OBJECT_ITEMS = 5
_OBJECT_FIELDS = ("Id", "Type", "Name", "LinkSelf", "LinkAlt", "Attributes")
#: Low-level category of each built-in action: logins have their own; every other action is an
#: authentication-control, group or privilege change (high-level category 3000, Authentication).
LOGIN_SUCCEEDED = 3012
LOGIN_FAILED = 3013
UNKNOWN_AUTHENTICATION = 3001
_ACTION_LOW_LEVEL_CATEGORY: Mapping[str, int] = {"user_login": LOGIN_SUCCEEDED, "user_login_failed": LOGIN_FAILED}
FILE_NAME = "atlassian-qradar-content.json"

PATH_LOG_SOURCE_TYPES = "/api/config/event_sources/log_source_management/log_source_types"
PATH_REGEX_PROPERTIES = "/api/config/event_sources/custom_properties/regex_properties"
PATH_LEEF_EXPRESSIONS = "/api/config/event_sources/custom_properties/property_leef_expressions"
PATH_QID_RECORDS = "/api/data_classification/qid_records"
PATH_EVENT_MAPPINGS = "/api/data_classification/dsm_event_mappings"


def property_name(leef_key: str) -> str:
    """The custom event property's name for a LEEF key (prefixed, so it never collides with other sources)."""
    return f"Atlassian {leef_key}"


def custom_keys(object_items: int = DEFAULT_OBJECT_ITEMS) -> list[str]:
    """Every custom LEEF key the encoder can emit (containerN*/contextN* for the first ``object_items`` items).

    :param object_items: how many items of ``attributes.container`` / ``attributes.context`` get properties.
    """
    fixed = sorted(key for key in SCHEMA_KEYS if key not in NORMALIZED_KEYS)
    dynamic = [
        f"{label}{number}{field}"
        for label in ("container", "context")
        for number in range(1, object_items + 1)
        for field in _OBJECT_FIELDS
    ]
    return fixed + dynamic


def qid_name(action: str) -> str:
    """The QID record's name for a built-in action, e.g. ``Atlassian: user login failed``."""
    return f"Atlassian: {action.replace('_', ' ')}"


def build_pack(object_items: int = DEFAULT_OBJECT_ITEMS) -> dict[str, Any]:
    """Build the content pack from the encoder's tables.

    :param object_items: containerN*/contextN* properties for the first this-many items.
    :return: a JSON-ready dict: ``log_source_type``, ``properties``, ``qid_records``, ``event_mappings``.
    """
    properties = [
        {
            "leef_key": key,
            "name": property_name(key),
            "description": f"LEEF key {key} of the Atlassian organization audit log",
            "property_type": "string",
        }
        for key in custom_keys(object_items)
    ]
    qid_records = []
    event_mappings = []
    for action in sorted(ACTION_CATEGORIES):
        category = ACTION_CATEGORIES[action]
        qid_records.append(
            {
                "action": action,
                "name": qid_name(action),
                "description": f"Atlassian organization audit action {action} (cat {category})",
                "severity": DEFAULT_SEVERITY[action],
                "low_level_category_id": _ACTION_LOW_LEVEL_CATEGORY.get(action, UNKNOWN_AUTHENTICATION),
            }
        )
        event_mappings.append(
            {"log_source_event_id": sanitize_event_id(action), "log_source_event_category": category, "action": action}
        )
    return {
        "generator": f"airflow-provider-atlassian-qradar {__version__}",
        "log_source_type": {"name": LOG_SOURCE_TYPE_NAME},
        "properties": properties,
        "qid_records": qid_records,
        "event_mappings": event_mappings,
    }


def export(out_dir: Path, object_items: int = DEFAULT_OBJECT_ITEMS) -> Path:
    """Write the pack to ``out_dir/atlassian-qradar-content.json`` and return the file's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    path.write_text(json.dumps(build_pack(object_items), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


class QRadarContentError(RuntimeError):
    """A QRadar API call failed; the message names the call, the status and what to do (never the token)."""


@dataclass
class ApplyReport:
    """What :func:`apply_pack` created and what already existed."""

    created: dict[str, int]
    existing: dict[str, int]


_HINTS = {
    401: "the token was refused: check the authorized service token (Admin > Authorized Services) and its expiry",
    403: "the token's user role lacks a permission: it needs Admin, or Manage Log Source Types and DSM Editor",
    404: "this QRadar has no such endpoint: check --host and --api-version (QRadar 7.4.1+ for API 14.0)",
}


def _filter_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class QRadarContentClient:
    """The few QRadar REST calls the pack needs (``SEC`` token auth, ``Version`` header, JSON bodies).

    :param host: ``https://console.example.com`` (a bare host name means https).
    :param token: the authorized service token; sent only in the ``SEC`` header, never logged.
    :param api_version: the ``Version`` header.
    :param verify: a CA bundle path, or True for the system's CAs.
    :param timeout: seconds per request.
    """

    def __init__(
        self,
        host: str,
        token: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        verify: bool | str = True,
        timeout: float = 30,
    ) -> None:
        self.base = host.rstrip("/") if "://" in host else f"https://{host.rstrip('/')}"
        self._token = token
        self.session = requests.Session()
        self.session.headers.update(
            {"SEC": token, "Version": api_version, "Accept": "application/json", "Content-Type": "application/json"}
        )
        # Passed on every request: a session-level verify loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify = verify
        self.timeout = timeout

    def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Any:
        try:
            response = self.session.request(
                method,
                self.base + path,
                params=params,
                json=body,
                timeout=self.timeout,
                allow_redirects=False,
                verify=self.verify,
            )
        except requests.RequestException as err:
            raise QRadarContentError(
                f"{method} {path}: cannot reach {self.base} ({type(err).__name__}); check --host, the network "
                "and --ca-cert"
            ) from None
        if response.status_code >= 300:
            text = response.text[:300].replace(self._token, "***") if self._token else response.text[:300]
            hint = _HINTS.get(response.status_code, "see the QRadar message above")
            raise QRadarContentError(f"{method} {path} returned {response.status_code}: {text.strip()} ({hint})")
        return response.json() if response.content else None

    def find(self, path: str, **fields: str | int) -> dict[str, Any] | None:
        """The first object at ``path`` whose fields equal ``fields`` (QRadar's ``filter`` parameter), or None."""
        clauses = [
            f"{name}={_filter_value(value) if isinstance(value, str) else value}" for name, value in fields.items()
        ]
        found = self._call("GET", path, params={"filter": " and ".join(clauses)})
        return found[0] if isinstance(found, list) and found else None

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new object and return QRadar's representation of it."""
        created = self._call("POST", path, body=dict(body))
        if not isinstance(created, dict):
            raise QRadarContentError(f"POST {path} returned no object: is --host a QRadar console?")
        return created


def apply_pack(client: QRadarContentClient, pack: Mapping[str, Any], log: Any = print) -> ApplyReport:
    """Create the pack's objects that do not exist yet (by name / key); safe to run again.

    :param client: the QRadar client.
    :param pack: a pack from :func:`build_pack` (or read back from :func:`export`'s file).
    :param log: progress lines go here.
    """
    created = {"log_source_type": 0, "properties": 0, "leef_expressions": 0, "qid_records": 0, "event_mappings": 0}
    existing = dict.fromkeys(created, 0)

    def ensure(kind: str, path: str, match: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        found = client.find(path, **match)
        if found is not None:
            existing[kind] += 1
            return found
        created[kind] += 1
        return client.create(path, body)

    name = pack["log_source_type"]["name"]
    type_id = int(ensure("log_source_type", PATH_LOG_SOURCE_TYPES, {"name": name}, {"name": name})["id"])
    log(f"log source type {name!r}: id {type_id}")
    for prop in pack["properties"]:
        regex_property = ensure(
            "properties",
            PATH_REGEX_PROPERTIES,
            {"name": prop["name"]},
            {
                "name": prop["name"],
                "description": prop["description"],
                "property_type": prop["property_type"],
                "use_for_rule_engine": True,
            },
        )
        identifier = str(regex_property["identifier"])
        ensure(
            "leef_expressions",
            PATH_LEEF_EXPRESSIONS,
            {"regex_property_identifier": identifier, "log_source_type_id": type_id},
            {
                "regex_property_identifier": identifier,
                "expression": prop["leef_key"],
                "log_source_type_id": type_id,
                "enabled": True,
            },
        )
    log(f"custom event properties: {len(pack['properties'])} (LEEF key expressions on type {type_id})")
    qid_by_action: dict[str, int] = {}
    for record in pack["qid_records"]:
        qid = ensure(
            "qid_records",
            PATH_QID_RECORDS,
            {"log_source_type_id": type_id, "name": record["name"]},
            {
                "log_source_type_id": type_id,
                "name": record["name"],
                "description": record["description"],
                "severity": record["severity"],
                "low_level_category_id": record["low_level_category_id"],
            },
        )
        qid_by_action[record["action"]] = int(qid["id"])
    log(f"QID records: {len(qid_by_action)}")
    for mapping in pack["event_mappings"]:
        ensure(
            "event_mappings",
            PATH_EVENT_MAPPINGS,
            {
                "log_source_type_id": type_id,
                "log_source_event_id": mapping["log_source_event_id"],
                "log_source_event_category": mapping["log_source_event_category"],
            },
            {
                "log_source_type_id": type_id,
                "log_source_event_id": mapping["log_source_event_id"],
                "log_source_event_category": mapping["log_source_event_category"],
                "qid_record_id": qid_by_action[mapping["action"]],
            },
        )
    log(f"event mappings: {len(pack['event_mappings'])}")
    return ApplyReport(created=created, existing=existing)


def _read_token(args: argparse.Namespace) -> str:
    if args.token:
        print(
            "warning: --token puts the QRadar token in your shell history and the process list; prefer --token-file",
            file=sys.stderr,
        )
        return str(args.token).strip()
    try:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise QRadarContentError(f"cannot read --token-file {args.token_file}: {err.strerror}") from None
    if not token:
        raise QRadarContentError(f"--token-file {args.token_file} is empty: put the authorized service token in it")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``export [--out DIR]`` or ``apply --host H --token-file F``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_atlassian_qradar.qradar_content",
        description="QRadar content (log source type, properties, QIDs, mappings) for the Atlassian audit log",
    )
    parser.add_argument("--object-items", type=int, default=DEFAULT_OBJECT_ITEMS, help="containerN/contextN items")
    commands = parser.add_subparsers(dest="command", required=True)
    export_parser = commands.add_parser("export", help="write the pack as JSON")
    export_parser.add_argument("--out", default=".", help="directory (default: the current one)")
    apply_parser = commands.add_parser("apply", help="create the pack in a QRadar console through its REST API")
    apply_parser.add_argument("--host", required=True, help="the console, e.g. https://qradar.example.com")
    token = apply_parser.add_mutually_exclusive_group(required=True)
    token.add_argument("--token-file", help="file holding an authorized service token (Admin > Authorized Services)")
    token.add_argument("--token", help=argparse.SUPPRESS)
    apply_parser.add_argument("--ca-cert", help="CA bundle that signed the console's certificate")
    apply_parser.add_argument("--api-version", default=DEFAULT_API_VERSION, help="Version header (default 14.0)")
    apply_parser.add_argument("--pack", help="apply this exported file instead of the built-in pack")
    args = parser.parse_args(argv)
    if args.command == "export":
        path = export(Path(args.out), args.object_items)
        print(f"wrote {path}")
        return 0
    try:
        pack = json.loads(Path(args.pack).read_text(encoding="utf-8")) if args.pack else build_pack(args.object_items)
        client = QRadarContentClient(
            args.host, _read_token(args), api_version=args.api_version, verify=args.ca_cert or True
        )
        report = apply_pack(client, pack)
    except QRadarContentError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"created {report.created}; already present {report.existing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
