"""A real `spyglass serve` process, started the way the README starts it, and the real clients.

`server` starts one per test module on a free port with a fresh data directory and `--demo`,
then drives it through the clouds.yaml that the server itself wrote.

With SPYGLASS_TEST_POSTGRES set, every server keeps its metadata in a PostgreSQL database of its
own (one per data directory, so a restart finds its data again) instead of SQLite.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from tests.e2e.warm_cli import WarmCli

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-e2e-password"
POSTGRES = os.environ.get("SPYGLASS_TEST_POSTGRES", "")
_created_databases: list[str] = []
WARM_CLI = WarmCli()


def database_env(data_dir: Path) -> dict[str, str]:
    """SPYGLASS_DATABASE_URL of the data directory's own PostgreSQL database (created once)."""
    if not POSTGRES:
        return {}
    name = "spyglass_e2e_" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    if name not in _created_databases:
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        _created_databases.append(name)
    return {
        "SPYGLASS_DATABASE_URL": make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    }


@contextmanager
def shared_database(prefix: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards, for several nodes to share: on the
    server SPYGLASS_TEST_POSTGRES names, or the one scripts/ensure-postgres.sh provides (the
    multi-node tests run in the SQLite pass too)."""
    root = Path(__file__).resolve().parents[2]
    ensure = [str(root / "scripts" / "ensure-postgres.sh")]
    server = POSTGRES or subprocess.run(ensure, capture_output=True, text=True, check=True).stdout.strip()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _drop_e2e_databases() -> Iterator[None]:
    yield
    if not _created_databases:
        return
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        for name in _created_databases:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _warm_cli() -> Iterator[None]:
    yield
    WARM_CLI.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def openstack(
        self, cloud: str, *args: str, check: bool = True, executable: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `openstack` CLI against this server.

        By default through the warm fork server (tests/e2e/warm_cli.py), which runs the CLI's own
        `main` in a fresh process without paying its imports again; `executable=True` starts the
        `openstack` console script itself."""
        env = {**os.environ, **self.env, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}
        for name in list(env):
            if name.startswith("OS_") and name != "OS_CLIENT_CONFIG_FILE":
                del env[name]
        argv = ["--os-cloud", cloud, *args]
        if executable:
            result = subprocess.run(
                [str(BIN / "openstack"), *argv], capture_output=True, text=True, env=env, timeout=120
            )
        else:
            result = WARM_CLI.run(argv, env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def openstack_json(self, cloud: str, *args: str, executable: bool = False) -> Any:
        return json.loads(self.openstack(cloud, *args, "-f", "json", executable=executable).stdout)

    def project_id(self, cloud: str) -> str:
        """The project a cloud of clouds.yaml acts in, as `openstack token issue` shows it."""
        project: str = self.openstack_json(cloud, "token", "issue")["project_id"]
        return project

    def create_image(self, cloud: str, name: str, *options: str) -> dict[str, Any]:
        """`openstack image create` of a raw, bare image, with more options (`--file PATH`, ...)."""
        image: dict[str, Any] = self.openstack_json(cloud, *self._create(name, *options))
        return image

    def refused_create(self, cloud: str, name: str, *options: str) -> subprocess.CompletedProcess[str]:
        """`openstack image create` as create_image runs it, expected to fail: its exit status and
        what it printed, for the test to check."""
        result = self.openstack(cloud, *self._create(name, *options), check=False)
        assert result.returncode != 0, result.stdout
        return result

    @staticmethod
    def _create(name: str, *options: str) -> tuple[str, ...]:
        return ("image", "create", "--disk-format", "raw", "--container-format", "bare", *options, name)


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, log_name: str = ""
) -> Server:
    port = free_port()
    log = data_dir.parent / (log_name or f"{data_dir.name}-server.log")
    full_env = {
        **os.environ,
        "SPYGLASS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        # One process per server unless a test asks for more (`--workers 2`): the suite starts
        # dozens of servers, and each extra worker imports the whole application again.
        "SPYGLASS_WORKERS": "1",
        **database_env(data_dir),
        **(env or {}),
    }
    process = subprocess.Popen(
        [str(BIN / "spyglass"), "--data-dir", str(data_dir), "serve", "--port", str(port), "--demo", *extra],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=full_env,
    )
    url = f"http://127.0.0.1:{port}"
    # Generous: on a loaded 2-core machine several servers (and their workers) may start at once.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"spyglass serve exited early:\n{log.read_text()}")
        try:
            httpx.get(url + "/", timeout=1)
            return Server(url, data_dir, process, log)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"spyglass serve did not start:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("e2e") / "data")
    yield running
    stop_server(running)
