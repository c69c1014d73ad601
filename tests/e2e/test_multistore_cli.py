"""Several stores in a real `spyglass serve --workers 2` (the stores reach the workers through the
environment) configured from a TOML file with a filesystem store, a Swift store and an S3 store on
the real Swift of tests/blobs/conftest.py, driven by the real openstack CLI: `image stores list`,
an upload, `image import --method copy-image --store ...`, `image save`, and delete.

`openstack image delete --store` removes one store's copy. python-openstackclient 10.5 has no
`--store` on `image create`: uploads to a chosen store are covered by
tests/blobs/test_multistore_app.py."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.blobs import conftest as blobs
from tests.blobs.conftest import Saio, purge, unique_name
from tests.e2e.conftest import Server, start_server, stop_server

# The real Swift's session fixture, shared with the store tests.
saio = blobs.saio

DATA = os.urandom(600 * 1024)


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    return {"container": unique_name("spyglass-e2e"), "bucket": unique_name("spyglass-e2e")}


@pytest.fixture(scope="module")
def multistore(
    tmp_path_factory: pytest.TempPathFactory,
    saio: Saio,
    names: dict[str, str],
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("multistore")
    env = saio.env
    config = root / "spyglass.toml"
    config.write_text(
        f"""
default_store = "fs"

[stores.fs]
type = "filesystem"
path = "{root / "fs"}"
description = "Local disks"

[stores.swift1]
type = "swift"
auth_url = "{env["ST_AUTH"]}"
user = "{env["ST_USER"]}"
key = "{env["ST_KEY"]}"
container = "{names["container"]}"

[stores.s3]
type = "s3"
endpoint_url = "{env["S3_ENDPOINT_URL"]}"
region = "{env["S3_REGION"]}"
bucket = "{names["bucket"]}"
access_key = "{env["S3_ACCESS_KEY_ID"]}"
secret_key = "{env["S3_SECRET_ACCESS_KEY"]}"
path_style = true
"""
    )
    running = start_server(root / "data", "--workers", "2", env={"SPYGLASS_CONFIG": str(config)})
    yield running
    stop_server(running)
    conn = saio.admin()
    for container in (names["container"], names["container"] + "_segments", names["bucket"]):
        purge(conn, container)


def _settled(server: Server, image_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        image: dict[str, Any] = server.openstack_json("spyglass-a", "image", "show", image_id)
        properties = image.get("properties") or {}
        if "os_glance_import_task" not in properties or time.monotonic() > deadline:
            return image
        time.sleep(0.2)


def _stores(image: dict[str, Any]) -> Any:
    """The CLI shows `stores` among the image's properties."""
    return image.get("stores") or (image.get("properties") or {}).get("stores")


def _objects(saio: Saio, container: str) -> list[str]:
    _headers, listing = saio.admin().get_container(container, full_listing=True)
    return [entry["name"] for entry in listing]


def test_stores_list(multistore: Server) -> None:
    stores = multistore.openstack_json("spyglass-a", "image", "stores", "list")
    assert [store["ID"] for store in stores] == ["fs", "swift1", "s3"]
    assert stores[0]["Default"] in (True, "true", "True")


def test_copy_image_into_every_store_then_delete(
    multistore: Server,
    saio: Saio,
    names: dict[str, str],
    tmp_path: Path,
) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(DATA)
    created = multistore.openstack_json(
        "spyglass-a", "image", "create", "--disk-format", "raw", "--container-format", "bare",
        "--file", str(source), "multi",
    )  # fmt: skip
    image_id = created["id"]
    assert _stores(multistore.openstack_json("spyglass-a", "image", "show", image_id)) == "fs"
    # The image first: --store takes every word after it (given twice, the last one wins).
    copy = ("image", "import", image_id, "--method", "copy-image", "--store", "swift1", "s3")
    # Glance's copy_image rule is admin-only by default: the owner project is refused.
    refused = multistore.openstack("spyglass-a", *copy, check=False)
    assert refused.returncode != 0 and "copy_image" in refused.stderr
    multistore.openstack("spyglass-admin", *copy)
    assert _stores(_settled(multistore, image_id)) == "fs,swift1,s3"
    assert len(_objects(saio, names["container"])) == 1
    assert len(_objects(saio, names["bucket"])) == 1
    saved = tmp_path / "saved.raw"
    multistore.openstack("spyglass-a", "image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == DATA
    # Remove one store's copy (an admin's call), then the image with the others.
    multistore.openstack("spyglass-admin", "image", "delete", "--store", "swift1", image_id)
    assert _objects(saio, names["container"]) == []
    assert _stores(multistore.openstack_json("spyglass-a", "image", "show", image_id)) == "fs,s3"
    multistore.openstack("spyglass-a", "image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == DATA
    multistore.openstack("spyglass-a", "image", "delete", image_id)
    assert _objects(saio, names["bucket"]) == []
    assert list((multistore.data_dir.parent / "fs").iterdir()) == []
