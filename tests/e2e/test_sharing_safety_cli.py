"""Sharing safety with the real `openstack` CLI and the spyglass_osc plugin against `spyglass serve`.

Project A (spyglass-a) owns the images, project B (spyglass-b, another domain) consumes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server

A, B = "spyglass-a", "spyglass-b"
DATA = hashlib.sha512(b"sharing safety").digest() * 4096  # 256 KiB


def _shared_with_b(server: Server, tmp_path: Path, name: str) -> str:
    source = tmp_path / f"{name}.raw"
    source.write_bytes(DATA)
    image = server.create_image(A, name, "--file", str(source))
    server.openstack(A, "image", "add", "project", image["id"], server.project_id(B))
    server.openstack(B, "image", "set", "--accept", image["id"])
    image_id: str = image["id"]
    return image_id


def _save(server: Server, cloud: str, image_id: str, path: Path) -> bytes:
    server.openstack(cloud, "image", "save", "--file", str(path), image_id)
    return path.read_bytes()


def test_a_sees_b_s_usage_and_a_protected_delete_names_b(server: Server, tmp_path: Path) -> None:
    project_b = server.project_id(B)
    image_id = _shared_with_b(server, tmp_path, "used")
    assert _save(server, B, image_id, tmp_path / "b.raw") == DATA

    usage = server.openstack_json(A, "image", "usage", image_id)
    assert [(r["Project"], r["Downloads"], r["Bytes"]) for r in usage] == [(project_b, 1, len(DATA))]
    assert [r["Project"] for r in server.openstack_json(B, "image", "usage", image_id)] == [project_b]

    server.openstack(A, "image", "set", "--property", "spyglass_protect_consumers=true", image_id)
    for command in (("image", "delete", image_id), ("image", "remove", "project", image_id, project_b)):
        refused = server.openstack(A, *command, check=False)
        assert refused.returncode != 0 and "409" in refused.stderr and project_b in refused.stderr
        # Whole sentences, with the header a client without the plugin can send.
        assert "X-Spyglass-Override-Impact: true" in refused.stderr and ".: " not in refused.stderr
    assert _save(server, B, image_id, tmp_path / "still.raw") == DATA

    server.openstack(A, "image", "delete", "--override-impact", image_id)
    assert server.openstack(A, "image", "show", image_id, check=False).returncode != 0


def test_b_s_copy_outlives_the_source(server: Server, tmp_path: Path) -> None:
    image_id = _shared_with_b(server, tmp_path, "source")
    copy = server.openstack_json(B, "image", "copy", image_id, "--name", "b-copy")
    assert (copy["name"], copy["visibility"], copy["owner"]) == ("b-copy", "private", server.project_id(B))
    assert copy["spyglass_copied_from_image"] == image_id

    server.openstack(A, "image", "delete", image_id)
    saved = _save(server, B, copy["id"], tmp_path / "copy.raw")
    assert hashlib.sha512(saved).hexdigest() == hashlib.sha512(DATA).hexdigest()
    assert server.openstack_json(B, "image", "show", copy["id"])["status"] == "active"


def test_b_reads_its_revocation_after_losing_access(server: Server, tmp_path: Path) -> None:
    project_a, project_b = server.project_id(A), server.project_id(B)
    image_id = _shared_with_b(server, tmp_path, "revoked")
    server.openstack(A, "image", "remove", "project", image_id, project_b)
    assert server.openstack(B, "image", "show", image_id, check=False).returncode != 0

    events = server.openstack_json(B, "image", "events", image_id)
    assert [e["Type"] for e in events] == ["member.added", "member.status_changed", "member.removed"]
    revoked = events[-1]
    assert (revoked["Member"], revoked["Actor Project"]) == (project_b, project_a)
    assert json.loads(revoked["Before"]) == {"status": "accepted"}


def test_b_finds_pending_shares_in_its_inbox(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "offered.raw"
    source.write_bytes(DATA)
    image = server.create_image(A, "offered", "--file", str(source))
    server.openstack(A, "image", "add", "project", image["id"], server.project_id(B))
    pending = server.openstack_json(B, "image", "invitations")
    assert image["id"] in [row["Image ID"] for row in pending]
    server.openstack(B, "image", "set", "--accept", image["id"])
    assert image["id"] not in [row["Image ID"] for row in server.openstack_json(B, "image", "invitations")]
    accepted = server.openstack_json(B, "image", "invitations", "--status", "accepted")
    assert image["id"] in [row["Image ID"] for row in accepted]


@pytest.fixture
def recycling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("recycle") / "data", env={"SPYGLASS_RECYCLE_RETENTION_DAYS": "7"}
    )
    yield running
    stop_server(running)


def test_a_restores_a_deleted_image_and_b_s_membership_is_back(recycling: Server, tmp_path: Path) -> None:
    project_b = recycling.project_id(B)
    image_id = _shared_with_b(recycling, tmp_path, "binned")
    recycling.openstack(A, "image", "delete", image_id)
    assert recycling.openstack_json(A, "image", "show", image_id)["status"] == "pending_delete"
    assert recycling.openstack(B, "image", "show", image_id, check=False).returncode != 0

    restored = recycling.openstack_json(A, "image", "restore", image_id)
    assert restored["status"] == "active"
    members = recycling.openstack_json(A, "image", "member", "list", image_id)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(project_b, "accepted")]
    assert _save(recycling, B, image_id, tmp_path / "back.raw") == DATA


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}/spyglass", received
    http.shutdown()
    http.server_close()


@pytest.fixture
def hooking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Webhook deliveries obey web-download's address policy: this one may reach the receiver."""
    env = {"SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.1/32"}
    running = start_server(tmp_path_factory.mktemp("hooks") / "data", env=env)
    yield running
    stop_server(running)


def test_b_s_webhook_gets_signed_events_in_order(
    hooking: Server, tmp_path: Path, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    server = hooking
    url, received = receiver
    secret = "b-webhook-secret-0123456789"
    token = server.openstack_json(B, "token", "issue")["id"]
    registered = httpx.post(
        f"{server.url}/image/v2/webhooks",
        json={"url": url, "secret": secret},
        headers={"X-Auth-Token": token},
    )
    assert registered.status_code == 201, registered.text

    project_b = server.project_id(B)
    image_id = _shared_with_b(server, tmp_path, "hooked")
    server.openstack(A, "image", "remove", "project", image_id, project_b)

    deadline = time.monotonic() + 30
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    events = [json.loads(body) for _, body in received]
    assert [(e["type"], e["image_id"]) for e in events] == [
        ("member.added", image_id),
        ("member.status_changed", image_id),
        ("member.removed", image_id),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    for headers, body in received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Spyglass-Signature"] == expected
        assert headers["X-Spyglass-Event"] == json.loads(body)["type"]
