"""Run the conformance suite's image tests (`tempest.api.image`) against a fresh `spyglass serve`.

`make tempest` runs it: Tempest from PyPI lives in its own virtualenv (.venv-tempest). This script
starts Spyglass on a free port with a new data directory, creates projects and users through the
embedded identity service's Keystone API (pre-provisioned accounts: Tempest creates no users of its
own), writes tempest.conf and accounts.yaml, runs `tempest run --regex '^tempest\\.api\\.image'`
and prints the pass / fail / skip counts with the reason of each failure and skip. The workspace
(config, Spyglass's log, Tempest's log) stays in .tempest/ for reading afterwards.

    .venv/bin/python scripts/tempest.py [--tempest .venv-tempest/bin/tempest] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
MEMBER_ACCOUNTS = 6
ADMIN_ACCOUNTS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Two filesystem stores, so that the multi-store and copy-image tests run; web-download may fetch
# from this machine (the image Tempest imports is served by `serve_image`).
CONFIG = """default_store = "fs"
web_download_allowed_networks = ["127.0.0.1/32"]

[stores.fs]
type = "filesystem"
path = "{data}/images-fs"
description = "First store"

[stores.fs2]
type = "filesystem"
path = "{data}/images-fs2"
description = "Second store"
"""


# A metadata definition of this script's own, loaded as an operator loads theirs: Tempest's metadef
# tests need at least one resource type (a Glance deployment has those of its definition files).
DEFINITION = {
    "namespace": "Spyglass::Tempest",
    "display_name": "Tempest fixture",
    "description": "Loaded by scripts/tempest.py so that resource types exist.",
    "visibility": "public",
    "protected": True,
    "resource_type_associations": [{"name": "OS::Glance::Image"}, {"name": "OS::Cinder::Volume"}],
    "properties": {"spyglass_tempest": {"title": "Tempest", "type": "string"}},
}


def load_definitions(work: Path, spyglass: Path, config: Path, data: str) -> None:
    definitions = work / "metadefs"
    definitions.mkdir(exist_ok=True)
    (definitions / "spyglass-tempest.json").write_text(json.dumps(DEFINITION))
    load = [str(spyglass), "--config", str(config), "--data-dir", data, "metadefs", "load", str(definitions)]
    subprocess.run(load, check=True, capture_output=True)


def start(work: Path, port: int, admin_password: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SPYGLASS_ADMIN_PASSWORD": admin_password}
    spyglass = Path(sys.executable).parent / "spyglass"
    config = work / "spyglass.toml"
    config.write_text(CONFIG.format(data=work / "data"))
    data = str(work / "data")
    command = [str(spyglass), "--config", str(config), "--data-dir", data, "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, stdout=(work / "spyglass.log").open("wb"), stderr=subprocess.STDOUT, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"spyglass serve exited:\n{(work / 'spyglass.log').read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            load_definitions(work, spyglass, config, data)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("spyglass serve did not start in 60 s")


class Identity:
    """Just enough of the Keystone v3 admin API to provision Tempest's accounts."""

    def __init__(self, url: str, admin_password: str) -> None:
        self.client = httpx.Client(base_url=f"{url}/identity/v3", timeout=30)
        auth = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": admin_password}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        answer = self.client.post("/auth/tokens", json=auth)
        answer.raise_for_status()
        self.client.headers["X-Auth-Token"] = answer.headers["X-Subject-Token"]
        roles = self.client.get("/roles").json()["roles"]
        self.roles = {role["name"]: role["id"] for role in roles}

    def project(self, name: str) -> str:
        project = self._post("/projects", "project", {"name": name, "domain_id": "default"})
        return str(project["id"])

    def account(self, name: str, project_id: str, project_name: str, role: str) -> dict[str, Any]:
        password = secrets.token_urlsafe(16)
        user = self._post(
            "/users",
            "user",
            {"name": name, "password": password, "domain_id": "default", "default_project_id": project_id},
        )
        granted = self.client.put(f"/projects/{project_id}/users/{user['id']}/roles/{self.roles[role]}")
        granted.raise_for_status()
        return {
            "username": name,
            "password": password,
            "project_name": project_name,
            "domain_name": "Default",
            "roles": [role],
        }

    def _post(self, path: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post(path, json={kind: body})
        answer.raise_for_status()
        created: dict[str, Any] = answer.json()[kind]
        return created


def accounts(identity: Identity) -> list[dict[str, Any]]:
    """Projects with a `member` and a `reader` each (Tempest's project_member and project_reader
    personas), and admins. Members come first: Tempest gives `alt` the first free account that is
    not an admin, and a reader cannot accept a share."""
    members, readers, admins = [], [], []
    for n in range(MEMBER_ACCOUNTS):
        name = f"tempest-project-{n}"
        project_id = identity.project(name)
        members.append(identity.account(f"tempest-member-{n}", project_id, name, "member"))
        readers.append(identity.account(f"tempest-reader-{n}", project_id, name, "reader"))
    for n in range(ADMIN_ACCOUNTS):
        name = f"tempest-admin-project-{n}"
        admin = identity.account(f"tempest-admin-{n}", identity.project(name), name, "admin")
        admins.append({**admin, "types": ["admin"]})
    return members + readers + admins


def serve_image(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A local HTTP server with a small raw and a qcow2 image, for the web-download import test
    (Tempest's default images are on the internet); their URLs without the extension."""
    served = work / "served"
    served.mkdir()
    (served / "image.raw").write_bytes(os.urandom(64 * 1024))
    # The web-download test imports a qcow2 image, which Spyglass inspects: a real one.
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(served / "image.qcow2"), "1M"], check=True)
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    process = subprocess.Popen(command, cwd=served, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}/image"


def tempest_conf(url: str, accounts_file: Path, log_dir: Path, http_image: str) -> str:
    return f"""[DEFAULT]
log_dir = {log_dir}
log_file = tempest.log

[auth]
use_dynamic_credentials = false
test_accounts_file = {accounts_file}
default_credentials_domain_name = Default
create_isolated_networks = false

[identity]
uri_v3 = {url}/identity/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[image]
http_image = {http_image}.raw
http_qcow2_image = {http_image}.qcow2
catalog_type = image
region = RegionOne
endpoint_type = public
container_formats = bare,ami,ari,aki,ovf,ova,docker,compressed
disk_formats = raw,qcow2,vhd,vhdx,vmdk,vdi,iso,ploop,aki,ari,ami

[image-feature-enabled]
api_v2 = true
api_v1 = false
import_image = true
os_glance_reserved = true

[enforce_scope]
glance = true

[service_available]
glance = true
nova = false
cinder = false
neutron = false
swift = false
heat = false
horizon = false

[validation]
run_validation = false
"""


def run_tempest(tempest: Path, workspace: Path, concurrency: int) -> str:
    command = [
        str(tempest), "run", "--config-file", str(workspace / "etc" / "tempest.conf"),
        "--regex", r"^tempest\.api\.image", "--concurrency", str(concurrency),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line)
    process.wait()
    output = "".join(lines)
    (workspace / "run.log").write_text(output)
    return output


def summary(output: str) -> str:
    counts = {
        name: int(match.group(1)) if (match := re.search(rf"- {name}: (\d+)", output)) else 0
        for name in ("Passed", "Failed", "Skipped")
    }
    failures = sorted(set(re.findall(r"\{\d+\} (.+?) \[[\d.]+s\] \.\.\. FAILED", output)))
    skips = sorted(set(re.findall(r"\{\d+\} (.+?) \.\.\. SKIPPED: (.*)", output)))
    passed, failed, skipped = counts["Passed"], counts["Failed"], counts["Skipped"]
    lines = [f"tempest.api.image: {passed} passed, {failed} failed, {skipped} skipped"]
    lines += [f"  FAILED  {name}" for name in failures]
    lines += [f"  SKIPPED {name}: {reason}" for name, reason in skips]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tempest", type=Path, default=ROOT / ".venv-tempest" / "bin" / "tempest")
    parser.add_argument("--work", type=Path, default=ROOT / ".tempest")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    work: Path = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    admin_password = secrets.token_urlsafe(16)
    server = start(work, port, admin_password)
    image_server, http_image = serve_image(work)
    try:
        accounts_file = work / "accounts.yaml"
        accounts_file.write_text(yaml.safe_dump(accounts(Identity(url, admin_password))))
        workspace = work / "workspace"
        # Tempest registers each workspace by name (~/.tempest/workspace.yaml): a name of this run.
        name = f"spyglass-{port}-{secrets.token_hex(4)}"
        init = [str(args.tempest), "init", "--name", name, str(workspace)]
        subprocess.run(init, check=True, capture_output=True)
        try:
            conf = tempest_conf(url, accounts_file, work, http_image)
            (workspace / "etc" / "tempest.conf").write_text(conf)
            output = run_tempest(args.tempest, workspace, args.concurrency)
        finally:
            subprocess.run([str(args.tempest), "workspace", "remove", "--name", name], capture_output=True)
    finally:
        image_server.terminate()
        server.terminate()
        server.wait(30)
    print()
    print(summary(output))
    print(f"(config, logs: {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
