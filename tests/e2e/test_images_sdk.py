"""openstacksdk's image proxy against a real `spyglass serve`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from openstack import connection, exceptions

from tests.e2e.clients import md5_of, random_file, sdk
from tests.e2e.conftest import Server

DATA = os.urandom(3 * 1024 * 1024 + 333)


@pytest.fixture(scope="module")
def conn(server: Server) -> Iterator[connection.Connection]:
    alice = sdk(server, "spyglass-a")
    yield alice
    alice.close()


@pytest.fixture(scope="module")
def image_id(conn: connection.Connection) -> str:
    image = conn.image.create_image(
        "sdk-data", data=DATA, disk_format="raw", container_format="bare", validate_checksum=True
    )
    return str(image.id)


def test_create_image_with_data_validates_checksums(conn: connection.Connection, image_id: str) -> None:
    image = conn.image.get_image(image_id)
    assert image.status == "active"
    assert image.size == len(DATA)
    assert image.checksum == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(DATA).hexdigest()
    # validate_checksum made the sdk declare both digests; the server accepted them as matching.
    assert image.properties["owner_specified.openstack.md5"] == image.checksum
    assert image.properties["owner_specified.openstack.sha256"] == hashlib.sha256(DATA).hexdigest()

    # A declared md5 that the data does not have: the server refuses the upload, the sdk cleans up.
    with pytest.raises(exceptions.BadRequestException, match="md5"):
        conn.image.create_image(
            "sdk-bad-md5", data=DATA, md5="0" * 32, disk_format="raw", container_format="bare"
        )
    assert list(conn.image.images(name="sdk-bad-md5")) == []


def test_cloud_layer_uploads_a_file(conn: connection.Connection, tmp_path: Path) -> None:
    path = random_file(tmp_path / "disk.raw", 1024 * 1024 + 5)
    image = conn.create_image(
        "sdk-file",
        filename=str(path),
        disk_format="raw",
        container_format="bare",
        wait=True,
        validate_checksum=True,
    )
    assert image.status == "active"
    assert image.checksum == md5_of(path)
    out = tmp_path / "out.raw"
    conn.download_image("sdk-file", output_path=str(out))
    assert out.read_bytes() == path.read_bytes()


def test_images_follows_next_links(conn: connection.Connection, server: Server) -> None:
    admin = sdk(server, "spyglass-admin")
    bob = sdk(server, "spyglass-b")
    # Alice's list merges her own images with the public ones of another project, interleaved in time.
    mine, public = set(), set()
    for n in range(32):
        if n % 2:
            image = admin.image.create_image(
                f"page-{n:02d}", disk_format="raw", container_format="bare", visibility="public"
            )
            public.add(image.id)
        else:
            image = conn.image.create_image(f"page-{n:02d}", disk_format="raw", container_format="bare")
            mine.add(image.id)
    bob.image.create_image("bobs-own", disk_format="raw", container_format="bare")

    # More images than the server's default page size (25): the sdk follows the next links.
    everything = list(conn.image.images())
    ids = [i.id for i in everything]
    assert len(ids) == len(set(ids)) > 25
    assert mine | public <= set(ids)
    assert "bobs-own" not in {i.name for i in everything}
    created = [i.created_at for i in everything]
    assert created == sorted(created, reverse=True)

    # Small pages, sorted by the server: the marker carries the sort across pages, and the pages
    # add up to what one big page holds.
    for key, direction in (("name", "asc"), ("name", "desc"), ("created_at", "asc"), ("status", "desc")):
        paged = [i.id for i in conn.image.images(limit=4, sort_key=key, sort_dir=direction)]
        one_page = [i.id for i in conn.image.images(limit=1000, sort_key=key, sort_dir=direction)]
        assert paged == one_page, (key, direction)
        assert sorted(paged) == sorted(ids)
    by_name = sorted(everything, key=lambda i: (i.name, i.id))
    assert [i.id for i in conn.image.images(limit=4, sort="name:asc")] == [i.id for i in by_name]

    queued = list(conn.image.images(status="queued", limit=7))
    assert {i.id for i in queued} == mine | public
    assert {i.id for i in conn.image.images(visibility="public", limit=5)} == public
    bobs = list(bob.image.images(limit=3))
    assert {i.id for i in bobs} == public | {i.id for i in bobs if i.name == "bobs-own"}
    assert len(bobs) == len(public) + 1
    # An admin lists every project's images, in pages as well.
    admin_paged = [i.id for i in admin.image.images(limit=6, sort="name:desc")]
    assert admin_paged == [i.id for i in admin.image.images(limit=1000, sort="name:desc")]
    assert set(ids) | {i.id for i in bobs} == set(admin_paged)
    admin.close()
    bob.close()


def test_get_update_and_tags(conn: connection.Connection, image_id: str) -> None:
    updated = conn.image.update_image(
        image_id, name="sdk-renamed", min_disk=2, architecture="x86_64", color="red"
    )
    assert updated.name == "sdk-renamed"
    assert updated.min_disk == 2
    assert updated.architecture == "x86_64"
    assert updated.properties["color"] == "red"

    conn.image.add_tag(image_id, "gold")
    conn.image.add_tag(image_id, "silver")
    assert sorted(conn.image.get_image(image_id).tags) == ["gold", "silver"]
    conn.image.remove_tag(image_id, "gold")
    fetched = conn.image.get_image(image_id)
    assert fetched.tags == ["silver"]
    assert fetched.properties["color"] == "red"
    assert [i.id for i in conn.image.images(tag="silver")] == [image_id]


def test_download_whole_streamed_and_to_a_file(
    conn: connection.Connection, image_id: str, tmp_path: Path
) -> None:
    whole = conn.image.download_image(image_id)
    assert whole.content == DATA

    streamed = conn.image.download_image(image_id, stream=True)
    assert b"".join(streamed.iter_content(64 * 1024)) == DATA

    out = tmp_path / "image.raw"
    conn.image.download_image(image_id, output=str(out))
    assert out.read_bytes() == DATA


def test_deactivate_and_reactivate(conn: connection.Connection, image_id: str) -> None:
    conn.image.deactivate_image(image_id)
    assert conn.image.get_image(image_id).status == "deactivated"
    conn.image.reactivate_image(image_id)
    assert conn.image.get_image(image_id).status == "active"
    assert conn.image.download_image(image_id).content == DATA


def test_delete_image(conn: connection.Connection) -> None:
    image = conn.image.create_image("sdk-doomed", data=b"bye", disk_format="raw", container_format="bare")
    conn.image.update_image(image.id, is_protected=True)
    with pytest.raises(exceptions.ForbiddenException):
        conn.image.delete_image(image.id)
    conn.image.update_image(image.id, is_protected=False)
    conn.image.delete_image(image.id)
    with pytest.raises(exceptions.NotFoundException):
        conn.image.get_image(image.id)


def test_schemas_stores_and_import_info(conn: connection.Connection) -> None:
    image_schema = conn.image.get_image_schema()
    assert image_schema.name == "image"
    assert image_schema.properties["visibility"]["enum"] == ["community", "public", "private", "shared"]
    assert conn.image.get_images_schema().name == "images"
    assert [(s.id, s.is_default) for s in conn.image.stores()] == [("fs", True)]
    assert conn.image.get_import_info().import_methods["value"] == [
        "glance-direct",
        "web-download",
        "copy-image",
    ]
