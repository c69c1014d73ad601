"""python-glanceclient v2 against a real `spyglass serve`, with a keystoneauth session."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import pytest
from glanceclient import exc

from tests.disk_images import qcow2
from tests.e2e.clients import glance
from tests.e2e.conftest import Server

# A real qcow2 (its declared disk_format is checked), with random clusters after its tables.
DATA = qcow2(1024**3, os.urandom(5 * 1024 * 1024 + 99))


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return glance(server, "spyglass-b")


@pytest.fixture(scope="module")
def image_id(client: Any) -> str:
    image = client.images.create(
        name="gc-image",
        disk_format="qcow2",
        container_format="bare",
        os_distro="debian",
        tags=["base"],
    )
    assert image["status"] == "queued"
    client.images.upload(image["id"], io.BytesIO(DATA), image_size=len(DATA))
    return str(image["id"])


def test_create_and_upload(client: Any, image_id: str) -> None:
    image = client.images.get(image_id)
    assert image["status"] == "active"
    assert image["size"] == len(DATA)
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert image["os_distro"] == "debian"
    assert image["tags"] == ["base"]
    assert image["visibility"] == "shared"


def test_data_download(client: Any, image_id: str) -> None:
    # glanceclient checks what it received against os_hash_value as it reads.
    assert b"".join(client.images.data(image_id)) == DATA
    assert b"".join(client.images.data(image_id, do_checksum=False)) == DATA


def test_data_of_an_image_without_data_is_empty(client: Any) -> None:
    image = client.images.create(name="gc-empty", disk_format="raw", container_format="bare")
    # The server answers 204 No Content; glanceclient returns a proxy for None.
    assert client.images.data(image["id"]).wrapped is None
    client.images.delete(image["id"])


def test_list_with_filters(client: Any, image_id: str) -> None:
    other = client.images.create(
        name="gc-other", disk_format="raw", container_format="bare", os_distro="arch"
    )

    def names(**kwargs: Any) -> list[str]:
        return [i["name"] for i in client.images.list(**kwargs)]

    assert names(filters={"name": "gc-image"}) == ["gc-image"]
    assert names(filters={"disk_format": "qcow2"}) == ["gc-image"]
    assert names(filters={"status": "queued"}) == ["gc-other"]
    assert names(filters={"os_distro": "arch"}) == ["gc-other"]
    assert names(filters={"tag": ["base"]}) == ["gc-image"]
    assert names(filters={"visibility": "private"}) == []
    assert names(filters={"size_min": len(DATA)}) == ["gc-image"]
    assert names(filters={"size_max": len(DATA) - 1}) == []
    # As Glance, the server reads only the strings "true" and "false" (a Python False would be "False").
    assert names(filters={"protected": "false", "name": "in:gc-image,gc-other"}) == ["gc-other", "gc-image"]
    assert names(filters={"id": f"in:{image_id}"}) == ["gc-image"]
    assert names(filters={"created_at": "gt:2000-01-01T00:00:00Z", "disk_format": "raw"}) == ["gc-other"]
    assert names(filters={"updated_at": "lt:2000-01-01T00:00:00Z"}) == []
    assert names(sort_key="name", sort_dir="asc") == ["gc-image", "gc-other"]
    assert names(sort="name:desc", page_size=1) == ["gc-other", "gc-image"]
    assert names(limit=1) == ["gc-other"]
    client.images.delete(other["id"])


def test_update_properties_and_tags(client: Any, image_id: str) -> None:
    updated = client.images.update(image_id, name="gc-renamed", hw_disk_bus="scsi", min_ram=512)
    assert updated["name"] == "gc-renamed"
    assert updated["hw_disk_bus"] == "scsi"
    assert updated["min_ram"] == 512

    updated = client.images.update(image_id, remove_props=["hw_disk_bus"], visibility="private")
    assert "hw_disk_bus" not in updated
    assert updated["visibility"] == "private"

    client.image_tags.update(image_id, "extra")
    client.image_tags.delete(image_id, "base")
    assert client.images.get(image_id)["tags"] == ["extra"]

    with pytest.raises(exc.HTTPForbidden):
        client.images.update(image_id, visibility="public")
    with pytest.raises(exc.HTTPForbidden):
        client.images.update(image_id, checksum="0" * 32)


def test_delete_removes_the_image_and_its_data(client: Any, server: Server) -> None:
    blobs = server.data_dir / "images"
    before = set(blobs.iterdir())
    image = client.images.create(name="gc-doomed", disk_format="raw", container_format="bare")
    client.images.upload(image["id"], io.BytesIO(b"short-lived"))
    assert len(set(blobs.iterdir()) - before) == 1
    client.images.delete(image["id"])
    assert set(blobs.iterdir()) == before
    with pytest.raises(exc.HTTPNotFound):
        client.images.get(image["id"])
    with pytest.raises(exc.HTTPNotFound):
        client.images.delete(image["id"])
