"""Identity administration with the real `openstack` CLI against a live `spyglass serve`: an admin
sets up a customer (domain, project, user, role), the new user works with images in the project,
and loses the project when the role is removed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import Server

ADMIN = "spyglass-admin"


def _as_new_user(server: Server, home: Path, user: str, password: str, project: str, domain: str) -> Server:
    """The same server, driven through a clouds.yaml of our own that adds a cloud for the new user."""
    clouds: dict[str, Any] = yaml.safe_load(server.clouds_yaml.read_text())
    template = clouds["clouds"]["spyglass-a"]
    auth = {
        **template["auth"],
        "username": user,
        "password": password,
        "project_name": project,
        "user_domain_name": domain,
        "project_domain_name": domain,
    }
    clouds["clouds"][user] = {**template, "auth": auth}
    home.mkdir()
    (home / "clouds.yaml").write_text(yaml.safe_dump(clouds, sort_keys=False))
    return dataclasses.replace(server, data_dir=home)


def test_domain_create_list_show_set_delete(server: Server) -> None:
    created = server.openstack_json(ADMIN, "domain", "create", "--description", "Acme Inc", "acme")
    assert (created["name"], created["description"], created["enabled"]) == ("acme", "Acme Inc", True)
    listed = server.openstack_json(ADMIN, "domain", "list")
    assert {"default", created["id"]} <= {row["ID"] for row in listed}
    assert server.openstack_json(ADMIN, "domain", "show", "acme")["id"] == created["id"]
    assert server.openstack_json(ADMIN, "domain", "show", created["id"])["name"] == "acme"

    server.openstack(ADMIN, "domain", "set", "--name", "acme-corp", "--description", "Renamed", "acme")
    shown = server.openstack_json(ADMIN, "domain", "show", "acme-corp")
    assert (shown["id"], shown["description"]) == (created["id"], "Renamed")

    refused = server.openstack(ADMIN, "domain", "delete", "acme-corp", check=False)
    assert refused.returncode != 0
    assert "Cannot delete a domain that is enabled, please disable it first." in refused.stderr
    server.openstack(ADMIN, "domain", "set", "--disable", "acme-corp")
    assert server.openstack_json(ADMIN, "domain", "show", "acme-corp")["enabled"] is False
    server.openstack(ADMIN, "domain", "delete", "acme-corp")
    assert server.openstack(ADMIN, "domain", "show", created["id"], check=False).returncode != 0

    # Only administrators manage domains.
    assert server.openstack("spyglass-a", "domain", "create", "mine", check=False).returncode != 0


def test_a_new_user_works_in_a_new_project_until_the_role_is_removed(server: Server, tmp_path: Path) -> None:
    server.openstack(ADMIN, "domain", "create", "globex")
    project = server.openstack_json(ADMIN, "project", "create", "--domain", "globex", "labs")
    assert project["parent_id"] == project["domain_id"]
    user = server.openstack_json(
        ADMIN,
        "user",
        "create",
        "--domain",
        "globex",
        "--project",
        project["id"],
        "--password",
        "hank-password",
        "hank",
    )
    assert user["default_project_id"] == project["id"]
    assert "password" not in user
    server.openstack(
        ADMIN,
        "role",
        "add",
        "--project",
        "labs",
        "--project-domain",
        "globex",
        "--user",
        user["id"],
        "member",
    )
    rows = server.openstack_json(
        ADMIN, "role", "assignment", "list", "--names", "--project", "labs", "--project-domain", "globex"
    )
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [("member", "hank@globex", "labs@globex")]

    hank = _as_new_user(server, tmp_path / "hank", "hank", "hank-password", "labs", "globex")
    assert hank.openstack_json("hank", "token", "issue")["project_id"] == project["id"]
    image = hank.openstack_json(
        "hank", "image", "create", "--disk-format", "raw", "--container-format", "bare", "lab-image"
    )
    assert image["owner"] == project["id"]
    assert [row["Name"] for row in hank.openstack_json("hank", "image", "list")] == ["lab-image"]
    assert [row["Name"] for row in hank.openstack_json("hank", "project", "list")] == ["labs"]
    # Other customers' projects stay closed to hank. The client gets 403 for the id, falls back to
    # listing by name, and reports that listing's 403, as it does against Keystone.
    demo_a = server.openstack_json("spyglass-a", "token", "issue")["project_id"]
    other = hank.openstack("hank", "project", "show", demo_a, check=False)
    assert other.returncode != 0 and "403" in other.stderr
    # The demo users never see hank's image.
    assert "lab-image" not in {row["Name"] for row in server.openstack_json("spyglass-a", "image", "list")}

    server.openstack(
        ADMIN,
        "role",
        "remove",
        "--project",
        "labs",
        "--project-domain",
        "globex",
        "--user",
        user["id"],
        "member",
    )
    assert server.openstack_json(ADMIN, "role", "assignment", "list", "--project", project["id"]) == []
    denied = hank.openstack("hank", "image", "list", check=False)
    assert denied.returncode != 0
    assert "401" in denied.stderr
