"""Interoperable import against a real `spyglass serve`, driven by the openstack CLI and openstacksdk:
`openstack image create --import` (glance-direct), `openstack image import --method web-download`, and
the sdk's `import_image` / `create_image(use_import=True)`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openstack import connection

from tests.disk_images import qcow2
from tests.e2e.clients import md5_of, random_file, sdk, sha512_of
from tests.e2e.conftest import Server, start_server, stop_server
from tests.http_source import HttpSource, http_source


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose web-download may reach this test's HTTP server on 127.0.0.1."""
    data_dir = tmp_path_factory.mktemp("import") / "data"
    running = start_server(data_dir, env={"SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": "127.0.0.1/32"})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def source() -> Iterator[HttpSource]:
    with http_source() as running:
        yield running


@pytest.fixture(scope="module")
def conn(local: Server) -> Iterator[connection.Connection]:
    alice = sdk(local, "spyglass-a")
    yield alice
    alice.close()


def settled(server: Server, image: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        shown: dict[str, Any] = server.openstack_json("spyglass-a", "image", "show", image)
        if shown["status"] not in ("uploading", "importing") or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


def test_cli_create_with_import_stages_and_imports(local: Server, tmp_path: Path) -> None:
    path = random_file(tmp_path / "disk.raw", 9 * 1024 * 1024 + 7)
    created = local.openstack_json(
        "spyglass-a",
        "image",
        "create",
        "--import",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(path),
        "imported-direct",
    )
    image = settled(local, created["id"])
    assert image["status"] == "active"
    assert image["checksum"] == md5_of(path)
    assert image["size"] == image["virtual_size"] == path.stat().st_size
    assert image["properties"]["os_glance_failed_import"] == ""
    assert "os_glance_import_task" not in image["properties"]
    out = tmp_path / "out.raw"
    local.openstack("spyglass-a", "image", "save", "--file", str(out), created["id"])
    assert out.read_bytes() == path.read_bytes()
    assert list((local.data_dir / "staging").iterdir()) == []


def test_cli_create_with_import_refuses_a_mislabelled_image(local: Server, tmp_path: Path) -> None:
    path = tmp_path / "disk.qcow2"
    path.write_bytes(qcow2(1024**3))
    result = local.openstack(
        "spyglass-a",
        "image",
        "create",
        "--import",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(path),
        "mislabelled",
        check=False,
    )
    assert result.returncode != 0
    assert "disk_format is raw" in result.stderr
    # The client deletes the image it created when staging fails.
    assert local.openstack_json("spyglass-a", "image", "list", "--name", "mislabelled") == []


def test_cli_web_download(local: Server, source: HttpSource) -> None:
    data = qcow2(4 * 1024**3, b"payload" * 100_000)
    uri = source.serve("/cli.qcow2", data)
    # (An `image create` without --file would upload its stdin: create with the sdk.)
    created = sdk(local, "spyglass-a").image.create_image(
        "cli-web", disk_format="qcow2", container_format="bare"
    )
    local.openstack("spyglass-a", "image", "import", "--method", "web-download", "--uri", uri, created.id)
    image = settled(local, created.id)
    assert (image["status"], image["size"], image["virtual_size"]) == ("active", len(data), 4 * 1024**3)


def test_sdk_import_image_web_download(
    conn: connection.Connection, source: HttpSource, tmp_path: Path
) -> None:
    path = random_file(tmp_path / "web.raw", 3 * 1024 * 1024)
    uri = source.serve("/sdk.raw", path.read_bytes())
    image = conn.image.create_image("sdk-web", disk_format="raw", container_format="bare")
    assert "web-download" in image.image_import_methods
    conn.image.import_image(image, method="web-download", uri=uri)
    image = conn.image.wait_for_status(image, "active", failures=["queued"], interval=0.2, wait=60)
    assert image.checksum == md5_of(path)
    assert image.hash_value == sha512_of(path)


def test_sdk_create_image_with_web_download(conn: connection.Connection, source: HttpSource) -> None:
    uri = source.serve("/sdk-create.qcow2", qcow2(1024**3))
    image = conn.image.create_image(
        "sdk-create-web",
        disk_format="qcow2",
        container_format="bare",
        use_import=True,
        import_method="web-download",
        uri=uri,
    )
    image = conn.image.wait_for_status(image, "active", failures=["queued"], interval=0.2, wait=60)
    assert image.virtual_size == 1024**3


def test_sdk_glance_direct_with_declared_digests(conn: connection.Connection, tmp_path: Path) -> None:
    path = random_file(tmp_path / "direct.raw", 2 * 1024 * 1024 + 1)
    image = conn.image.create_image(
        "sdk-direct",
        filename=str(path),
        disk_format="raw",
        container_format="bare",
        use_import=True,
        validate_checksum=True,
    )
    image = conn.image.wait_for_status(image, "active", failures=["queued"], interval=0.2, wait=60)
    assert image.checksum == md5_of(path)
    assert image.properties["owner_specified.openstack.md5"] == md5_of(path)


def test_web_download_of_loopback_is_refused_by_default(server: Server, source: HttpSource) -> None:
    uri = source.serve("/secret", b"internal")
    alice = sdk(server, "spyglass-a")
    created = alice.image.create_image("ssrf", disk_format="raw", container_format="bare")
    # The sdk returns the import call's response without raising on errors; the CLI reports success.
    server.openstack("spyglass-a", "image", "import", "--method", "web-download", "--uri", uri, created.id)
    response = alice.image.import_image(created, method="web-download", uri=uri)
    assert response.status_code == 400
    assert "may not reach" in response.text
    assert alice.image.get_image(created.id).status == "queued"
    assert "/secret" not in source.requests
