"""Deprecation with a successor and families, with the real `openstack` CLI and the spyglass_osc plugin
against `spyglass serve` (its deprecation schedule polling every second, a recycle bin on).

Project A (spyglass-a) owns the images, project B (spyglass-b, another domain) consumes them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from spyglass.timeutil import isotime, utcnow
from tests.e2e.conftest import Server, start_server, stop_server

A, B = "spyglass-a", "spyglass-b"
DATA = hashlib.sha512(b"deprecation").digest() * 1024


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"SPYGLASS_DEPRECATION_INTERVAL_SECONDS": "1", "SPYGLASS_RECYCLE_RETENTION_DAYS": "7"}
    running = start_server(tmp_path_factory.mktemp("deprecation") / "data", env=env)
    yield running
    stop_server(running)


def _image(server: Server, tmp_path: Path, name: str, family: str) -> str:
    source = tmp_path / f"{name}.raw"
    source.write_bytes(DATA)
    image = server.create_image(A, name, "--property", f"spyglass_family={family}", "--file", str(source))
    image_id: str = image["id"]
    return image_id


def _share_with_b(server: Server, image_id: str) -> None:
    project_b = server.openstack_json(B, "token", "issue")["project_id"]
    server.openstack(A, "image", "add", "project", image_id, project_b)
    server.openstack(B, "image", "set", "--accept", image_id)


def _in(seconds: int) -> str:
    return str(isotime(utcnow() + timedelta(seconds=seconds)))


def _until(check: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_deprecate_obsolete_delete_and_the_family_s_latest(server: Server, tmp_path: Path) -> None:
    old = _image(server, tmp_path, "ubuntu-old", "ubuntu")
    new = _image(server, tmp_path, "ubuntu-new", "ubuntu")
    _share_with_b(server, old)
    assert server.openstack_json(A, "image", "family", "latest", "ubuntu")["id"] == new
    assert server.openstack_json(B, "image", "family", "latest", "ubuntu")["id"] == old

    shown = server.openstack_json(
        A,
        "image",
        "deprecate",
        old,
        "--replacement",
        "ubuntu-new",
        "--obsolete-at",
        _in(20),
        "--delete-at",
        _in(30),
    )
    assert (shown["spyglass_deprecated"], shown["spyglass_replaced_by"]) == ("true", new)
    # Glance's own client shows the properties to the consumer; the family has no image for B now.
    properties = server.openstack_json(B, "image", "show", old)["properties"]
    assert properties["spyglass_replaced_by"] == new
    assert server.openstack(B, "image", "family", "latest", "ubuntu", check=False).returncode != 0
    notices = server.openstack_json(B, "image", "notices")
    assert [(n["Image ID"], n["Replacement"], n["State"]) for n in notices] == [(old, new, "deprecated")]

    # openstacksdk reads the body of a refused download as data: the CLI fails on its checksum and
    # cannot show the 410's message; the message, naming the replacement, is checked on the wire.
    token = server.openstack_json(B, "token", "issue")["id"]

    def refused_to_b() -> bool:
        answer = httpx.get(f"{server.url}/image/v2/images/{old}/file", headers={"X-Auth-Token": token})
        return answer.status_code == 410 and new in answer.text

    _until(refused_to_b)
    saved = server.openstack(B, "image", "save", "--file", str(tmp_path / "b.raw"), old, check=False)
    assert saved.returncode != 0
    server.openstack(A, "image", "save", "--file", str(tmp_path / "a.raw"), old)
    assert (tmp_path / "a.raw").read_bytes() == DATA

    def in_the_bin() -> bool:
        return bool(server.openstack_json(A, "image", "show", old)["status"] == "pending_delete")

    _until(in_the_bin)
    events = [e["Type"] for e in server.openstack_json(A, "image", "events", old)]
    assert events.count("image.deprecated") == 1 and events.count("image.obsoleting") == 1
    assert events[-1] == "image.deleted"


def test_undeprecate(server: Server, tmp_path: Path) -> None:
    image_id = _image(server, tmp_path, "debian", "debian")
    server.openstack(A, "image", "deprecate", image_id)
    assert server.openstack(B, "image", "deprecate", image_id, check=False).returncode != 0
    shown = server.openstack_json(A, "image", "undeprecate", image_id)
    assert "spyglass_deprecated" not in shown
    assert server.openstack_json(A, "image", "family", "latest", "debian")["id"] == image_id
