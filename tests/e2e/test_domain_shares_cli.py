"""Sharing with a whole domain through the real `openstack` CLI, unchanged: `image add project IMG
domain:<id>`, `image member list`, the consumer's inbox and `image set --accept`.

Project A (spyglass-a, domain Default) owns the image; project B (spyglass-b) is in the demo's
second domain, where the admin later creates another project.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.e2e.conftest import Server

A, B, ADMIN = "spyglass-a", "spyglass-b", "spyglass-admin"
DATA = hashlib.sha512(b"domain share").digest() * 1024


def _b_project_and_domain(server: Server) -> tuple[str, str]:
    project_b: str = server.openstack_json(B, "token", "issue")["project_id"]
    domain: str = server.openstack_json(B, "project", "show", project_b)["domain_id"]
    return project_b, domain


def test_a_shares_with_b_s_whole_domain(server: Server, tmp_path: Path) -> None:
    project_b, domain = _b_project_and_domain(server)
    source = tmp_path / "dom.raw"
    source.write_bytes(DATA)
    image = server.create_image(A, "dom", "--file", str(source))
    image_id = image["id"]
    server.openstack(A, "image", "add", "project", image_id, f"domain:{domain}")

    members = server.openstack_json(A, "image", "member", "list", image_id)
    assert {(m["Member ID"], m["Status"]) for m in members} == {
        (f"domain:{domain}", "pending"),
        (project_b, "pending"),
    }
    assert image_id in [row["Image ID"] for row in server.openstack_json(B, "image", "invitations")]
    server.openstack(B, "image", "set", "--accept", image_id)
    server.openstack(B, "image", "save", "--file", str(tmp_path / "b.raw"), image_id)
    assert (tmp_path / "b.raw").read_bytes() == DATA

    # A project created afterwards in the domain is offered the image too.
    later = server.openstack_json(ADMIN, "project", "create", "--domain", domain, "later-project")
    members = server.openstack_json(A, "image", "member", "list", image_id)
    assert (later["id"], "pending") in {(m["Member ID"], m["Status"]) for m in members}

    # Removing the domain entry ends what came from it.
    server.openstack(A, "image", "remove", "project", image_id, f"domain:{domain}")
    assert server.openstack_json(A, "image", "member", "list", image_id) == []
    assert server.openstack(B, "image", "show", image_id, check=False).returncode != 0
    events = server.openstack_json(B, "image", "events", image_id)
    assert [e["Type"] for e in events] == ["member.added", "member.status_changed", "member.removed"]
