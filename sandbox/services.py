"""PostgreSQL and Redis from the Debian packages, on loopback, in throw-away directories: what the compose file's
``postgres`` and ``redis`` services give Airflow, for tests that run the CeleryExecutor without containers.

Each server runs in the foreground as a child in its own process group, with its data (and PostgreSQL's unix
socket) in a temporary directory that is removed on exit. Nothing here uses the system's clusters or services.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sandbox.airflow_stack import free_port

#: Debian installs PostgreSQL's server programs here, one folder per major version, not on PATH.
DEBIAN_POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: PostgreSQL refuses to run as root; as root, the servers run as this user (created by the Debian package).
POSTGRES_OS_USER = "postgres"


_ServerT = TypeVar("_ServerT", bound="_Server")


class ServiceBinaryMissing(RuntimeError):
    """A server program (PostgreSQL or Redis) is not installed."""


def postgres_bin_dir() -> Path:
    """Return the folder holding ``initdb``, ``postgres`` and ``pg_isready`` (newest installed version first)."""
    candidates = sorted(
        (Path(p) for p in glob.glob(DEBIAN_POSTGRES_BIN_GLOB) if (Path(p) / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    if candidates:
        return candidates[0]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServiceBinaryMissing("PostgreSQL server programs not found (Debian package postgresql): no initdb")


def redis_server_binary() -> str:
    """Return the ``redis-server`` path."""
    # /usr/bin may be missing from a minimal PATH (cron, some CI runners).
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if binary is None:
        raise ServiceBinaryMissing("redis-server not found (Debian package redis-server)")
    return binary


def _signal_group(process_group: int, sig: int) -> None:
    try:
        os.killpg(process_group, sig)
    except ProcessLookupError:
        pass


def processes_under(directory: Path) -> list[int]:
    """PIDs of the live processes whose working directory is in ``directory`` (Linux /proc).

    PostgreSQL's server processes each start a session of their own, so neither their process group nor their
    session finds them; but they all run in the data directory, as Redis runs in its ``--dir``.
    """
    prefix = str(directory)
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:  # gone, or not ours to read
                continue
            if cwd == prefix or cwd.startswith(prefix + os.sep):
                members.append(int(entry.name))
    return members


def _stop_process_group(process: subprocess.Popen[bytes], first_signal: int, timeout: float) -> None:
    """Signal the child's process group, wait for the child, then SIGKILL whatever is left of the group."""
    _signal_group(process.pid, first_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)  # the server if it hung; otherwise any child it left behind
    process.wait(timeout=10)


class _Server:
    """Shared life cycle: a temporary directory, one foreground child, a log file, a readiness probe."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / f"{self.name}.log"

    def log_tail(self, chars: int = 4000) -> str:
        if self.directory is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]

    def _popen(self, command: list[str], **kwargs: Any) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )

    def _wait_until(self, ready: Any, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready on {self.host}:{self.port} after {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the server (its whole process group) and remove its directory."""
        if self.process is not None:
            _stop_process_group(self.process, self.stop_signal, timeout=20)
            self.process = None
        if self.directory is not None:
            for pid in processes_under(self.directory):  # only after a SIGKILL: a clean stop ends them all
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def start(self, timeout: float = 60) -> _Server:
        """Start the server and wait until it serves; return self."""
        raise NotImplementedError

    def __enter__(self: _ServerT) -> _ServerT:
        try:
            self.start()
        except BaseException:
            self.stop()  # a half-started server leaves nothing behind either
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class Postgres(_Server):
    """
    A private PostgreSQL cluster: ``initdb`` into a temporary directory, ``postgres`` on a free loopback port,
    one database owned by a password-protected superuser.

    As root, the server runs as the Debian ``postgres`` user (PostgreSQL refuses root), so the directory is made
    outside pytest's root-only ``tmp_path``. Tuned for throw-away use: no fsync, no durability.

    :param database: database created once the server is up.
    :param user: superuser name (also its owner).
    :param bin_dir: folder of the server programs; found under /usr/lib/postgresql by default.
    """

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, disconnect clients, exit.
    stop_signal = signal.SIGINT

    def __init__(
        self, database: str = "airflow", user: str = "airflow", *, bin_dir: Path | None = None, port: int | None = None
    ) -> None:
        super().__init__(port=port)
        self.bin_dir = bin_dir or postgres_bin_dir()
        self.database = database
        self.user = user
        self.password = secrets.token_hex(16)
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(POSTGRES_OS_USER)
            except KeyError as err:
                raise ServiceBinaryMissing(
                    f"running as root and there is no {POSTGRES_OS_USER!r} user to run PostgreSQL as: "
                    "install the Debian package postgresql, which creates it"
                ) from err
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def url(self, driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL of the database (``db+postgresql`` for Celery's result backend)."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def _run(self, *command: str) -> None:
        env = {**os.environ, "PGPASSWORD": self.password, "LC_ALL": "C.UTF-8"}
        result = subprocess.run(
            list(command), env=env, capture_output=True, text=True, timeout=120, check=False, **self._run_as
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} exited {result.returncode}:\n{result.stdout}{result.stderr}")

    def _accepting(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60) -> Postgres:
        """Create the cluster, start the server, create the database; return self."""
        self.directory = Path(tempfile.mkdtemp(prefix="aq-postgres-"))
        if self._run_as:
            os.chown(self.directory, self._run_as["user"], self._run_as["group"])
        data, sockets = self.directory / "data", self.directory / "sockets"
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        sockets.mkdir()
        if self._run_as:
            for path in (sockets, password_file, self.log_path):
                path.touch()
                os.chown(path, self._run_as["user"], self._run_as["group"])
        self._run(
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            self.user,
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-sync",
        )
        password_file.unlink()
        self._popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "max_connections=300",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            **self._run_as,
        )
        self._wait_until(self._accepting, timeout)
        self._run(str(self.bin_dir / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, self.database)
        return self


class Redis(_Server):
    """
    ``redis-server`` on a free loopback port with its working directory in a temporary directory and no
    persistence (no RDB snapshots, no AOF): a Celery broker for one test.

    :param binary: the redis-server program; found on PATH by default.
    """

    name = "redis"

    def __init__(self, *, binary: str | None = None, port: int | None = None) -> None:
        super().__init__(port=port)
        self.binary = binary or redis_server_binary()

    def url(self, database: int = 0) -> str:
        """Celery broker URL."""
        return f"redis://{self.host}:{self.port}/{database}"

    def _pong(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 30) -> Redis:
        """Start the server and wait until it answers PING; return self."""
        self.directory = Path(tempfile.mkdtemp(prefix="aq-redis-"))
        self._popen(
            [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
        )
        self._wait_until(self._pong, timeout)
        return self
