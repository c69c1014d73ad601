"""Shares in bulk and shares that end on a date, with the real `openstack` CLI and the plugin."""

from __future__ import annotations

import json

from tests.e2e.conftest import Server

A, B = "spyglass-a", "spyglass-b"
WHEN = "2099-01-31T00:00:00Z"


def _shared_image(server: Server, name: str) -> str:
    image_id: str = server.create_image(A, name, "--shared")["id"]
    return image_id


def test_bulk_add_and_remove(server: Server) -> None:
    b = server.project_id(B)
    images = [_shared_image(server, f"bulk-{n}") for n in range(2)]
    args = [arg for image in images for arg in ("--image", image)]
    added = server.openstack_json(A, "image", "share", "bulk", "--add", *args, "--project", b, "--atomic")
    assert [r["Status"] for r in added] == [200, 200]
    assert {r["Image ID"] for r in added} == set(images)
    removed = server.openstack_json(A, "image", "share", "bulk", "--remove", *args, "--project", b)
    assert [r["Status"] for r in removed] == [204, 204]


def test_expiry_on_add_and_later(server: Server) -> None:
    b = server.project_id(B)
    image_id = _shared_image(server, "expiring")
    server.openstack(A, "image", "add", "project", image_id, b, "--expires-at", WHEN)
    events = server.openstack_json(A, "image", "events", image_id)
    assert [e["Type"] for e in events] == ["member.added", "member.expiry_changed"]
    assert json.loads(events[-1]["After"]) == {"expires_at": WHEN}
    shown = server.openstack_json(A, "image", "member", "expiry", "set", image_id, b, "--never")
    assert shown["expires_at"] is None
    shown = server.openstack_json(A, "image", "member", "expiry", "set", image_id, b, "--expires-at", WHEN)
    assert shown["expires_at"] == WHEN
    inbox = server.openstack_json(B, "image", "invitations")
    assert any(entry["Image ID"] == image_id for entry in inbox)
