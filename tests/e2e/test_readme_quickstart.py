"""The README's quick-start, pasted as a new user pastes it: `make run` in one terminal, the client
block of "Using it with the openstack client" in another, line by line as written there.

The client block installs python-openstackclient and the plugin (./osc-plugin) into a virtualenv of
its own from the package index, as a user's shell would; it runs in a directory holding the
server's `spyglass-data` and a link to this checkout's osc-plugin/, so that the block's relative
paths mean what they mean in a checkout. `make run` gets a free port and that data directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def quickstart_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Using it with the openstack client", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's quick-start section has no sh block"
    return str(blocks[0])


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "make-run.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SPYGLASS_"))}
    process = subprocess.Popen(
        [
            "make",
            "-C",
            str(REPO),
            "run",
            f"VENV={VENV}",
            f"DATA_DIR={tmp_path / 'spyglass-data'}",
            f"PORT={port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "make-run.log").read_text()
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@pytest.mark.timeout(900)
def test_the_quick_start_pastes_as_is(make_run: str, tmp_path: Path) -> None:
    (tmp_path / "osc-plugin").symlink_to(REPO / "osc-plugin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(VENV)))
    shell = subprocess.run(
        ["bash", "-euo", "pipefail", "-x"],
        input=quickstart_block(),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert shell.returncode == 0, shell.stderr[-4000:]
    assert "bob downloaded the same bytes" in shell.stdout
    # The plugin answered from the client's own virtualenv: bob's project (as bash -x traced the
    # `image add project` line) is listed as a consumer of alice's image.
    added = next(line for line in shell.stderr.splitlines() if " image add project " in line)
    bobs_project = added.split()[-1]
    assert bobs_project in shell.stdout.split("bob downloaded the same bytes", 1)[1]
