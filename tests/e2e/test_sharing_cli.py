"""The sharing workflow of shared/reference/glance-sharing/workflow-transcript.txt, replayed with the
real `openstack` CLI against a live `spyglass serve`. Project A (spyglass-a, domain Default) owns
the image; project B (spyglass-b) lives in another domain."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.e2e.conftest import Server


def _ids(server: Server, cloud: str, *args: str) -> set[str]:
    return {row["ID"] for row in server.openstack_json(cloud, "image", "list", *args)}


def test_sharing_workflow_with_the_openstack_cli(server: Server, tmp_path: Path) -> None:
    data = hashlib.sha512(b"seed").digest() * 16384  # 1 MiB
    source = tmp_path / "img.raw"
    source.write_bytes(data)
    project_b = server.openstack_json("spyglass-b", "token", "issue")["project_id"]
    a, b = "spyglass-a", "spyglass-b"

    image = server.openstack_json(
        a,
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(source),
        "imgA",
    )
    iid = image["id"]
    assert image["checksum"] == hashlib.md5(data).hexdigest()
    assert image["visibility"] == "shared"
    assert iid not in _ids(server, a, "--private")
    server.openstack(a, "image", "set", "--shared", iid)

    member = server.openstack_json(a, "image", "add", "project", iid, project_b)
    assert member["status"] == "pending" and member["member_id"] == project_b
    rows = server.openstack_json(a, "image", "member", "list", iid)
    assert [(r["Member ID"], r["Status"]) for r in rows] == [(project_b, "pending")]

    # B while pending: not listed by default, listed with --member-status pending, can show.
    assert iid not in _ids(server, b)
    assert iid not in _ids(server, b, "--shared")
    assert iid in _ids(server, b, "--member-status", "pending")
    assert server.openstack_json(b, "image", "show", iid)["id"] == iid

    forbidden = [
        ("image", "delete", iid),
        ("image", "set", "--name", "hacked", iid),
        ("image", "add", "project", iid, server.openstack_json(a, "token", "issue")["project_id"]),
    ]
    for command in forbidden:
        result = server.openstack(b, *command, check=False)
        assert result.returncode != 0 and "403" in result.stderr, (command, result.stderr)
    on_behalf = server.openstack(a, "image", "set", "--accept", "--project", project_b, iid, check=False)
    assert on_behalf.returncode != 0 and "modify_member" in on_behalf.stderr

    server.openstack(b, "image", "set", "--accept", iid)
    assert iid in _ids(server, b)
    out = tmp_path / "out"
    server.openstack(b, "image", "save", "--file", str(out), iid)
    assert out.read_bytes() == data

    server.openstack(b, "image", "set", "--reject", iid)
    assert iid not in _ids(server, b)
    assert iid in _ids(server, b, "--member-status", "rejected")
    server.openstack(b, "image", "set", "--accept", iid)

    server.openstack(a, "image", "remove", "project", iid, project_b)
    assert server.openstack_json(a, "image", "member", "list", iid) == []
    gone = server.openstack(b, "image", "show", iid, check=False)
    assert gone.returncode != 0 and "No Image found" in gone.stderr
    assert iid not in _ids(server, b, "--member-status", "all")

    # Community: hidden from B's default list, listed with --community, members refused.
    server.openstack(a, "image", "set", "--community", iid)
    assert iid not in _ids(server, b)
    assert iid in _ids(server, b, "--community")
    assert server.openstack_json(b, "image", "show", iid)["visibility"] == "community"
    refused = server.openstack(a, "image", "add", "project", iid, project_b, check=False)
    assert refused.returncode != 0 and "Not allowed to create members" in refused.stderr

    # Public: only an admin may publish; then B sees it but still cannot change it.
    assert server.openstack(a, "image", "set", "--public", iid, check=False).returncode != 0
    server.openstack("spyglass-admin", "image", "set", "--public", iid)
    assert iid in _ids(server, b)
    assert server.openstack(b, "image", "set", "--name", "hacked", iid, check=False).returncode != 0
    server.openstack("spyglass-admin", "image", "set", "--private", iid)
    assert server.openstack(b, "image", "show", iid, check=False).returncode != 0
