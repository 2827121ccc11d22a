"""The QRadar content pack: complete against the encoder's own output, and `apply` against a stub of IBM's REST API.

The stub is a real HTTPS server of this test that enforces the request shapes of IBM's API reference (the pages
cited in qradar_content.py): method and path, the ``SEC`` token and ``Version`` headers, JSON bodies with exactly
the documented fields and types, references to objects that exist, and the documented duplicate errors.
"""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_atlassian_qradar import qradar_content
from airflow_provider_atlassian_qradar.leef import ACTION_CATEGORIES, DEFAULT_SEVERITY, SCHEMA_KEYS, LeefOptions
from airflow_provider_atlassian_qradar.qradar_content import (
    LOG_SOURCE_TYPE_NAME,
    NORMALIZED_KEYS,
    QRadarContentClient,
    apply_pack,
    build_pack,
)
from sandbox.atlassian_sim import SimulatorConfig, generate_events
from sandbox.leef_parser import parse_leef
from sandbox.receivers import generate_certs

TOKEN = "5f2c1d0e-qradar-token-NEVER-PRINTED"

# Documented body fields per endpoint: name -> (type, required).
SHAPES: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    qradar_content.PATH_LOG_SOURCE_TYPES: {
        "name": (str, True),
        "protocol_types": (list, False),
        "default_protocol_id": (int, False),
        "log_source_extension_id": (int, False),
    },
    qradar_content.PATH_REGEX_PROPERTIES: {
        "name": (str, True),
        "description": (str, False),
        "property_type": (str, True),
        "use_for_rule_engine": (bool, False),
        "datetime_format": (str, False),
        "locale": (str, False),
    },
    qradar_content.PATH_LEEF_EXPRESSIONS: {
        "regex_property_identifier": (str, True),
        "enabled": (bool, False),
        "expression": (str, True),
        "payload": (str, False),
        "log_source_type_id": (int, True),
        "log_source_id": (int, False),
        "qid": (int, False),
        "low_level_category_id": (int, False),
    },
    qradar_content.PATH_QID_RECORDS: {
        "log_source_type_id": (int, True),
        "name": (str, True),
        "description": (str, False),
        "severity": (int, False),
        "low_level_category_id": (int, True),
    },
    qradar_content.PATH_EVENT_MAPPINGS: {
        "log_source_type_id": (int, True),
        "log_source_event_id": (str, True),
        "log_source_event_category": (str, True),
        "qid_record_id": (int, True),
    },
}
FILTER_CLAUSE = re.compile(r'\s*(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\d+))\s*(?:and|$)')


class StubQRadar:
    """The five endpoints, in memory, strict about what IBM documents."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict[str, Any]]] = {path: [] for path in SHAPES}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, query: str, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path))
            if headers.get("SEC") != TOKEN:
                return 401, {"http_response": {"code": 401}, "message": "You are unauthorized to access the API."}
            if not re.fullmatch(r"\d+\.\d+", headers.get("Version", "")):
                return 422, {"message": "Version header missing or malformed"}
            if "application/json" not in headers.get("Accept", ""):
                return 406, {"message": "Accept must allow application/json"}
            if path not in SHAPES:
                return 404, {"message": f"no endpoint {path}"}
            if method == "GET":
                return self._list(path, query)
            if method == "POST":
                if headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return 415, {"message": "Content-Type must be application/json"}
                try:
                    data = json.loads(body)
                except ValueError:
                    return 422, {"code": 1005, "message": "body is not JSON"}
                return self._create(path, data)
            return 405, {"message": f"{method} not allowed"}

    def _list(self, path: str, query: str) -> tuple[int, Any]:
        wanted: dict[str, Any] = {}
        for text in parse_qs(query).get("filter", []):
            position = 0
            while position < len(text):
                match = FILTER_CLAUSE.match(text, position)
                if not match:
                    return 422, {"message": f"bad filter {text!r}"}
                name, string, number = match.groups()
                wanted[name] = re.sub(r"\\(.)", r"\1", string) if string is not None else int(number)
                position = match.end()
        found = [obj for obj in self.objects[path] if all(obj.get(k) == v for k, v in wanted.items())]
        return 200, found

    def _create(self, path: str, data: Any) -> tuple[int, Any]:
        if not isinstance(data, dict):
            return 422, {"code": 1005, "message": "body must be a JSON object"}
        shape = SHAPES[path]
        for name, value in data.items():
            if name not in shape:
                return 422, {"code": 1005, "message": f"undocumented field {name}"}
            expected = shape[name][0]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                return 422, {"code": 1005, "message": f"{name} must be {expected}"}
        missing = [name for name, (_, required) in shape.items() if required and name not in data]
        if missing:
            return 422, {"code": 1005, "message": f"missing {missing}"}
        type_ids = {obj["id"] for obj in self.objects[qradar_content.PATH_LOG_SOURCE_TYPES]}
        if "log_source_type_id" in data and data["log_source_type_id"] not in type_ids:
            return 422, {"code": 1005, "message": "log_source_type_id does not exist"}
        obj = dict(data, id=len(self.objects[path]) + 1)
        if path == qradar_content.PATH_LOG_SOURCE_TYPES:
            if len(data["name"]) > 241:
                return 422, {"code": 1003, "message": "name exceeds 241 characters"}
            if any(other["name"] == data["name"] for other in self.objects[path]):
                return 422, {"code": 1001, "message": "The provided name is already in use."}
            obj["id"] = 4000 + obj["id"]
        elif path == qradar_content.PATH_REGEX_PROPERTIES:
            if data["property_type"] not in ("string", "numeric", "ip", "port", "time"):
                return 422, {"code": 1005, "message": "bad property_type"}
            obj["identifier"] = str(uuid.uuid4())
        elif path == qradar_content.PATH_LEEF_EXPRESSIONS:
            identifiers = {prop["identifier"] for prop in self.objects[qradar_content.PATH_REGEX_PROPERTIES]}
            if data["regex_property_identifier"] not in identifiers:
                return 422, {"code": 1005, "message": "regex_property_identifier does not exist"}
        elif path == qradar_content.PATH_QID_RECORDS:
            if not 0 <= data.get("severity", 5) <= 10 or len(data["name"]) > 255:
                return 422, {"code": 1005, "message": "severity 0..10, name up to 255 characters"}
            obj["qid"] = 2_000_000 + obj["id"]
        elif path == qradar_content.PATH_EVENT_MAPPINGS:
            if data["qid_record_id"] not in {q["id"] for q in self.objects[qradar_content.PATH_QID_RECORDS]}:
                return 422, {"code": 1005, "message": "qid_record_id does not exist"}
            key = ("log_source_type_id", "log_source_event_id", "log_source_event_category")
            if any(all(other[k] == data[k] for k in key) for other in self.objects[path]):
                return 409, {"code": 1008, "message": "There is an existing custom DSM event mapping"}
            obj["custom_event"] = True
        self.objects[path].append(obj)
        return 201, obj


@pytest.fixture
def stub(tmp_path) -> Iterator[tuple[StubQRadar, str, Path]]:
    certs = generate_certs(tmp_path / "certs")
    state = StubQRadar()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = state.handle(self.command, url.path, url.query, self.headers, self.rfile.read(length))
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"https://127.0.0.1:{server.server_address[1]}", certs.ca_cert
    finally:
        server.shutdown()
        server.server_close()


def encoded_corpus() -> list[tuple[list[str], dict[str, str]]]:
    """The simulator's events (hostile ones included) through the real encoder, parsed back as QRadar would."""
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    config = SimulatorConfig(
        org_id="org-1",
        api_key="unused-key-1234",
        start=start,
        end=start + timedelta(hours=2),
        events_per_hour=1500,
        seed=16,
        hostile_ratio=0.2,
    )
    options = LeefOptions(action_group_names={"user_login": "Sign-in"}, org_id="org-1", max_bytes=1 << 20)
    return [parse_leef(options.format(event)) for event in generate_events(config)]


class TestPackContents:
    def test_every_custom_key_the_encoder_can_emit_has_a_property(self):
        pack = build_pack()
        keys = {prop["leef_key"] for prop in pack["properties"]}
        assert SCHEMA_KEYS - NORMALIZED_KEYS <= keys
        emitted = {key for _header, attributes in encoded_corpus() for key in attributes}
        assert emitted - NORMALIZED_KEYS <= keys, f"keys without a property: {sorted(emitted - NORMALIZED_KEYS - keys)}"
        assert any(key.startswith("container1") for key in emitted), "the corpus exercised containerN keys"
        assert len({prop["name"] for prop in pack["properties"]}) == len(pack["properties"])
        assert all(prop["property_type"] == "string" for prop in pack["properties"])

    def test_every_built_in_action_has_a_qid_and_a_mapping_with_what_the_encoder_emits(self):
        pack = build_pack()
        qids = {record["action"]: record for record in pack["qid_records"]}
        mappings = {mapping["action"]: mapping for mapping in pack["event_mappings"]}
        assert qids.keys() == mappings.keys() == set(ACTION_CATEGORIES)
        options = LeefOptions(org_id="org-1")
        for action, category in ACTION_CATEGORIES.items():
            assert qids[action]["severity"] == DEFAULT_SEVERITY[action]
            assert 1 <= qids[action]["severity"] <= 10
            event = {"id": "e1", "type": "events", "attributes": {"time": "2026-11-20T10:00:00Z", "action": action}}
            header, attributes = parse_leef(options.format(event))
            # QRadar's QID map key is (EventID, cat): the mapping must hold exactly what the encoder writes.
            assert (mappings[action]["log_source_event_id"], mappings[action]["log_source_event_category"]) == (
                header[4],
                attributes["cat"],
            )
            assert attributes["cat"] == category
        assert {q["low_level_category_id"] for q in pack["qid_records"]} <= {3001, 3012, 3013}
        assert qids["user_login_failed"]["low_level_category_id"] == 3013

    def test_export_writes_the_pack(self, tmp_path):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "airflow_provider_atlassian_qradar.qradar_content",
                "export",
                "--out",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        written = tmp_path / qradar_content.FILE_NAME
        assert f"wrote {written}" in result.stdout
        assert json.loads(written.read_text(encoding="utf-8")) == json.loads(json.dumps(build_pack()))


class TestApply:
    def test_apply_creates_everything_in_the_documented_shapes_and_a_second_run_creates_nothing(self, stub):
        state, host, ca = stub
        client = QRadarContentClient(host, TOKEN, verify=str(ca))
        pack = build_pack()
        report = apply_pack(client, pack, log=lambda line: None)
        assert report.created == {
            "log_source_type": 1,
            "properties": len(pack["properties"]),
            "leef_expressions": len(pack["properties"]),
            "qid_records": len(ACTION_CATEGORIES),
            "event_mappings": len(ACTION_CATEGORIES),
        }
        (log_source_type,) = state.objects[qradar_content.PATH_LOG_SOURCE_TYPES]
        assert log_source_type["name"] == LOG_SOURCE_TYPE_NAME
        expressions = state.objects[qradar_content.PATH_LEEF_EXPRESSIONS]
        assert {e["expression"] for e in expressions} == {p["leef_key"] for p in pack["properties"]}
        assert {e["log_source_type_id"] for e in expressions} == {log_source_type["id"]}
        qid_ids = {q["name"]: q["id"] for q in state.objects[qradar_content.PATH_QID_RECORDS]}
        for mapping in state.objects[qradar_content.PATH_EVENT_MAPPINGS]:
            action = next(
                m["action"]
                for m in pack["event_mappings"]
                if m["log_source_event_id"] == mapping["log_source_event_id"]
            )
            assert mapping["qid_record_id"] == qid_ids[qradar_content.qid_name(action)]
        again = apply_pack(client, pack, log=lambda line: None)
        assert sum(again.created.values()) == 0
        assert again.existing == report.created

    def test_the_stub_refuses_what_ibm_does_not_document(self, stub):
        # The stub's strictness is what makes the test above mean something.
        _state, host, ca = stub
        client = QRadarContentClient(host, TOKEN, verify=str(ca))
        with pytest.raises(qradar_content.QRadarContentError, match="undocumented field"):
            client.create(qradar_content.PATH_LOG_SOURCE_TYPES, {"name": "x", "vendor": "Atlassian"})
        with pytest.raises(qradar_content.QRadarContentError, match="log_source_type_id does not exist"):
            client.create(
                qradar_content.PATH_QID_RECORDS, {"log_source_type_id": 1, "name": "q", "low_level_category_id": 3001}
            )
        client.session.headers.pop("Version")
        with pytest.raises(qradar_content.QRadarContentError, match="422"):
            client.find(qradar_content.PATH_LOG_SOURCE_TYPES, name="x")

    def test_a_refused_token_names_the_fix_and_never_the_token(self, stub, tmp_path):
        _state, host, ca = stub
        token_file = tmp_path / "token"
        token_file.write_text("wrong-token-value-1234\n", encoding="utf-8")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "airflow_provider_atlassian_qradar.qradar_content",
                "apply",
                "--host",
                host,
                "--token-file",
                str(token_file),
                "--ca-cert",
                str(ca),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        assert "returned 401" in result.stderr and "Authorized Services" in result.stderr
        assert "wrong-token-value-1234" not in result.stdout + result.stderr

    def test_the_command_applies_with_a_token_file_and_warns_about_token_on_the_command_line(self, stub, tmp_path):
        state, host, ca = stub
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n", encoding="utf-8")
        command = [sys.executable, "-m", "airflow_provider_atlassian_qradar.qradar_content", "apply", "--host", host]
        done = subprocess.run(
            [*command, "--token-file", str(token_file), "--ca-cert", str(ca)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "log source type 'Atlassian Organization Audit Log'" in done.stdout
        assert TOKEN not in done.stdout + done.stderr
        warned = subprocess.run(
            [*command, "--token", TOKEN, "--ca-cert", str(ca)], capture_output=True, text=True, timeout=120
        )
        assert warned.returncode == 0, warned.stderr
        assert "prefer --token-file" in warned.stderr
        assert "already present" in warned.stdout and len(state.objects[qradar_content.PATH_LOG_SOURCE_TYPES]) == 1

    def test_an_untrusted_certificate_is_refused(self, stub, tmp_path):
        _state, host, _ca = stub
        other = generate_certs(tmp_path / "other").other_ca_cert
        client = QRadarContentClient(host, TOKEN, verify=str(other))
        with pytest.raises(qradar_content.QRadarContentError, match="--ca-cert") as failure:
            apply_pack(client, build_pack(), log=lambda line: None)
        assert TOKEN not in str(failure.value)
