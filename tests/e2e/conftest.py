"""A real `spyglass serve` process, started the way the README starts it, and the real clients.

`server` starts one per test module on a free port with a fresh data directory and `--demo`,
then drives it through the clouds.yaml that the server itself wrote.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-e2e-password"


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

    def openstack(self, cloud: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real `openstack` CLI against this server."""
        env = {**os.environ, **self.env, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}
        for name in list(env):
            if name.startswith("OS_") and name != "OS_CLIENT_CONFIG_FILE":
                del env[name]
        result = subprocess.run(
            [str(BIN / "openstack"), "--os-cloud", cloud, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def openstack_json(self, cloud: str, *args: str) -> Any:
        return json.loads(self.openstack(cloud, *args, "-f", "json").stdout)


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, log_name: str = ""
) -> Server:
    port = free_port()
    log = data_dir.parent / (log_name or f"{data_dir.name}-server.log")
    full_env = {**os.environ, "SPYGLASS_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env or {})}
    process = subprocess.Popen(
        [str(BIN / "spyglass"), "--data-dir", str(data_dir), "serve", "--port", str(port), "--demo", *extra],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=full_env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
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
