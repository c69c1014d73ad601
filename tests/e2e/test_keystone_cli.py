"""identity = "keystone" end to end: a real `spyglass serve` trusting the real Keystone of
scripts/ensure-keystone.sh, registered in its catalog with `spyglass keystone register`, driven by
the real `openstack` CLI as users of two projects in two Keystone domains."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import BIN, Server, start_server, stop_server
from tests.keystone import ADMIN_PASSWORD, Account, Keystone, keystone

__all__ = ["keystone"]

# Every CLI call here also asks the real Keystone for a token (about a second on a loaded machine).
pytestmark = pytest.mark.timeout(900)


def _cloud(keystone: Keystone, account: Account, region: str) -> dict[str, object]:
    return {
        "auth": {
            "auth_url": keystone.url,
            "username": account.user_name,
            "password": account.password,
            "project_name": account.project_name,
            "user_domain_name": account.domain_name,
            "project_domain_name": account.domain_name,
        },
        "region_name": region,
        "interface": "public",
        "identity_api_version": 3,
        "image_api_version": 2,
    }


class Cloud:
    def __init__(self, server: Server, keystone: Keystone, config: Path, region: str) -> None:
        self.server = server
        self.keystone = keystone
        self.config = config
        self.region = region
        self.a = keystone.account("alpha", domain_id=keystone.create_domain("dom-a")["id"])
        self.b = keystone.account("beta", domain_id=keystone.create_domain("dom-b")["id"])
        admin = Account("", "admin", ADMIN_PASSWORD, "Default", "", "admin")
        clouds = {
            "a": _cloud(keystone, self.a, region),
            "b": _cloud(keystone, self.b, region),
            "admin": _cloud(keystone, admin, region),
        }
        server.clouds_yaml.write_text(yaml.safe_dump({"clouds": clouds}))

    def add_cloud(self, name: str, account: Account) -> None:
        """One more cloud in clouds.yaml, acting as `account`."""
        clouds = yaml.safe_load(self.server.clouds_yaml.read_text())
        clouds["clouds"][name] = _cloud(self.keystone, account, self.region)
        self.server.clouds_yaml.write_text(yaml.safe_dump(clouds))

    def spyglass(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "SPYGLASS_CONFIG": str(self.config),
            "OS_CLIENT_CONFIG_FILE": str(self.server.clouds_yaml),
        }
        return subprocess.run(
            [str(BIN / "spyglass"), "--data-dir", str(self.server.data_dir), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Cloud]:
    base = tmp_path_factory.mktemp("keystone-e2e")
    config = keystone.spyglass_config(base / "spyglass.toml", token_cache_time=5)
    server = start_server(base / "data", env={"SPYGLASS_CONFIG": str(config)})
    # A region of this module's own: the catalog of the shared Keystone is not anyone else's.
    region = f"Test-{uuid.uuid4().hex[:8]}"
    keystone.identity_in_region(region)
    try:
        made = Cloud(server, keystone, config, region)
        registered = made.spyglass(
            "keystone", "register", "--public-url", server.url, "--region", region, "--os-cloud", "admin"
        )
        assert registered.returncode == 0, registered.stderr
        yield made
    finally:
        stop_server(server)


def _ids(server: Server, cloud: str, *args: str) -> set[str]:
    return {row["ID"] for row in server.openstack_json(cloud, "image", "list", *args)}


def test_register_is_idempotent_and_the_catalog_leads_to_spyglass(cloud: Cloud) -> None:
    again = cloud.spyglass(
        "keystone",
        "register",
        "--public-url",
        cloud.server.url,
        "--region",
        cloud.region,
        "--os-cloud",
        "admin",
    )
    assert again.returncode == 0 and "already registered" in again.stdout, again.stdout + again.stderr
    endpoints = cloud.server.openstack_json(
        "admin", "endpoint", "list", "--service", "image", "--region", cloud.region
    )
    assert sorted(e["Interface"] for e in endpoints) == ["admin", "internal", "public"]
    assert {e["URL"] for e in endpoints} == {cloud.server.url}
    # No endpoint given anywhere but the catalog: the client found Spyglass through Keystone.
    assert cloud.server.openstack_json("a", "image", "list") == []


def test_seed_workflow_across_two_keystone_domains(cloud: Cloud, tmp_path: Path) -> None:
    server, a, b = cloud.server, "a", "b"
    data = hashlib.sha512(b"keystone-seed").digest() * 4096
    source = tmp_path / "img.raw"
    source.write_bytes(data)
    image = server.create_image(a, "imgA", "--file", str(source))
    iid = image["id"]
    assert image["owner"] == cloud.a.project_id
    server.openstack(a, "image", "set", "--shared", iid)
    member = server.openstack_json(a, "image", "add", "project", iid, cloud.b.project_id)
    assert member["status"] == "pending"
    assert iid not in _ids(server, b)
    server.openstack(b, "image", "set", "--accept", iid)
    assert iid in _ids(server, b)
    assert server.openstack_json(b, "image", "show", iid)["id"] == iid
    out = tmp_path / "out"
    server.openstack(b, "image", "save", "--file", str(out), iid)
    assert out.read_bytes() == data
    server.openstack(a, "image", "remove", "project", iid, cloud.b.project_id)
    gone = server.openstack(b, "image", "show", iid, check=False)
    assert gone.returncode != 0 and "No Image found" in gone.stderr


def test_member_ids_are_checked_in_keystone(cloud: Cloud) -> None:
    server = cloud.server
    iid = server.create_image("a", "to-share", "--shared")["id"]
    unknown = server.openstack("a", "image", "add", "project", iid, uuid.uuid4().hex, check=False)
    assert unknown.returncode != 0 and "does not exist" in unknown.stderr, unknown.stderr
    disabled = cloud.keystone.create_project("disabled")
    cloud.keystone.set_project_enabled(disabled["id"], False)
    refused = server.openstack("a", "image", "add", "project", iid, disabled["id"], check=False)
    assert refused.returncode != 0 and "is disabled" in refused.stderr, refused.stderr


def test_projects_sync_applies_deleted_and_disabled_projects(cloud: Cloud) -> None:
    server, keystone = cloud.server, cloud.keystone
    gamma = keystone.account("gamma")
    owner = keystone.account("owner")
    with_gamma = server.create_image("a", "for-gamma", "--shared")["id"]
    server.openstack("a", "image", "add", "project", with_gamma, gamma.project_id)
    # An image owned by `owner`, shared with B and accepted: B sees it until `owner` is disabled.
    cloud.add_cloud("owner", owner)
    owned = server.create_image("owner", "owned", "--shared")["id"]
    server.openstack("owner", "image", "add", "project", owned, cloud.b.project_id)
    server.openstack("b", "image", "set", "--accept", owned)
    community = server.create_image("owner", "community", "--community")["id"]
    assert owned in _ids(server, "b")
    assert community in _ids(server, "b", "--community")

    first = cloud.spyglass("projects", "sync")
    assert first.returncode == 0, first.stderr
    keystone.delete_project(gamma.project_id)
    keystone.set_project_enabled(owner.project_id, False)
    synced = cloud.spyglass("projects", "sync")
    assert synced.returncode == 0, synced.stderr
    assert gamma.project_id in synced.stdout and owner.project_id in synced.stdout
    assert server.openstack_json("a", "image", "member", "list", with_gamma) == []
    # The disabled owner's shares are suspended, its community image too.
    assert owned not in _ids(server, "b")
    assert community not in _ids(server, "b", "--community")
    # Applied once: a second run does not report them again (other tests change the shared
    # Keystone meanwhile, so the run's totals are not asserted).
    again = cloud.spyglass("projects", "sync")
    assert again.returncode == 0, again.stderr
    assert gamma.project_id not in again.stdout and owner.project_id not in again.stdout, again.stdout

    keystone.set_project_enabled(owner.project_id, True)
    assert cloud.spyglass("projects", "sync").returncode == 0
    assert owned in _ids(server, "b")
    assert community in _ids(server, "b", "--community")
