"""Trusted owners and leaving a share with the real `openstack` CLI and the spyglass_osc plugin.

Project A (spyglass-a, domain Default) owns the images, project B (spyglass-b, another domain)
consumes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server

A, B = "spyglass-a", "spyglass-b"
DATA = b"trusted image bytes" * 1000


def _offer(server: Server, tmp_path: Path, name: str) -> tuple[str, dict[str, Any]]:
    """A's new image shared with B: its id and the member row `image add project` shows."""
    source = tmp_path / f"{name}.raw"
    source.write_bytes(DATA)
    image = server.create_image(A, name, "--file", str(source))
    member: dict[str, Any] = server.openstack_json(
        A, "image", "add", "project", image["id"], server.project_id(B)
    )
    return image["id"], member


def _listed(server: Server, cloud: str) -> set[str]:
    return {i["ID"] for i in server.openstack_json(cloud, "image", "list")}


def test_b_trusts_a_and_a_s_shares_need_no_accept(server: Server, tmp_path: Path) -> None:
    project_a = server.project_id(A)
    rule = server.openstack_json(B, "image", "trust", "add", "--owner", project_a)
    assert (rule["Owner"], rule["Owner Domain"]) == (project_a, None)
    assert [r["ID"] for r in server.openstack_json(B, "image", "trust", "list")] == [rule["ID"]]
    assert server.openstack_json(A, "image", "trust", "list") == []

    image_id, member = _offer(server, tmp_path, "trusted")
    assert member["status"] == "accepted"
    assert image_id in _listed(server, B)  # no `image set --accept` needed
    server.openstack(B, "image", "save", "--file", str(tmp_path / "got.raw"), image_id)
    assert (tmp_path / "got.raw").read_bytes() == DATA

    server.openstack(B, "image", "trust", "delete", rule["ID"])
    assert server.openstack_json(B, "image", "trust", "list") == []
    pending, member = _offer(server, tmp_path, "untrusted")
    assert member["status"] == "pending" and pending not in _listed(server, B)


def test_b_trusts_a_s_domain(server: Server, tmp_path: Path) -> None:
    rule = server.openstack_json(B, "image", "trust", "add", "--owner-domain", "default")
    assert (rule["Owner"], rule["Owner Domain"]) == (None, "default")
    try:
        assert _offer(server, tmp_path, "by-domain")[1]["status"] == "accepted"
    finally:
        server.openstack(B, "image", "trust", "delete", rule["ID"])


def test_bad_rules_are_refused_clearly(server: Server) -> None:
    unknown = server.openstack(B, "image", "trust", "add", "--owner", "no-such-project", check=False)
    assert unknown.returncode != 0 and "400" in unknown.stderr and "does not exist" in unknown.stderr
    neither = server.openstack(B, "image", "trust", "add", check=False)
    assert neither.returncode != 0
    missing = "00000000-0000-4000-8000-000000000000"
    gone = server.openstack(B, "image", "trust", "delete", missing, check=False)
    assert gone.returncode != 0 and "404" in gone.stderr


def test_b_leaves_a_share_and_a_sees_it(server: Server, tmp_path: Path) -> None:
    project_b = server.project_id(B)
    image_id, _ = _offer(server, tmp_path, "left")
    server.openstack(B, "image", "set", "--accept", image_id)
    # Glance's member removal stays the owner's.
    refused = server.openstack(B, "image", "remove", "project", image_id, project_b, check=False)
    assert refused.returncode != 0

    server.openstack(B, "image", "leave", image_id)
    assert server.openstack(B, "image", "show", image_id, check=False).returncode != 0
    events = server.openstack_json(A, "image", "events", image_id)
    assert [e["Type"] for e in events][-1] == "member.left"
    assert (events[-1]["Member"], events[-1]["Actor Project"]) == (project_b, project_b)
    again = server.openstack(B, "image", "leave", image_id, check=False)
    assert again.returncode != 0 and "404" in again.stderr
