"""Uploads that fail: over SPYGLASS_IMAGE_SIZE_CAP (413 for every client), or cut off by the client.

Either way the image goes back to `queued`, no partial data is left behind, and a new upload works.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from glanceclient import exc

from tests.e2e.clients import glance, keystone_session, random_file
from tests.e2e.conftest import Server, start_server, stop_server

CAP = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("capped") / "data"
    running = start_server(data_dir, env={"SPYGLASS_IMAGE_SIZE_CAP": str(CAP)})
    yield running
    stop_server(running)


def blob_files(server: Server) -> list[Path]:
    return sorted((server.data_dir / "images").iterdir())


def test_cli_upload_over_the_cap_is_refused_and_cleaned_up(capped: Server, tmp_path: Path) -> None:
    # The server is the module's: the other tests may have run on it first (xdist steals tests).
    before = blob_files(capped)
    path = random_file(tmp_path / "big.raw", CAP + 1)
    result = capped.openstack(
        "spyglass-a",
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(path),
        "too-big",
        check=False,
    )
    assert result.returncode != 0
    assert "413" in result.stderr
    # The CLI deletes the image it created when the upload fails.
    assert capped.openstack_json("spyglass-a", "image", "list", "--name", "too-big") == []
    assert blob_files(capped) == before


def test_streamed_upload_over_the_cap_leaves_the_image_queued(capped: Server) -> None:
    client = glance(capped, "spyglass-b")
    image = client.images.create(name="capped", disk_format="raw", container_format="bare")
    # Without image_size glanceclient sends the body chunked: the server only learns the size by reading.
    before = blob_files(capped)
    with pytest.raises(exc.HTTPOverLimit):
        client.images.upload(image["id"], io.BytesIO(os.urandom(CAP + 4096)))
    assert client.images.get(image["id"])["status"] == "queued"
    assert blob_files(capped) == before

    data = os.urandom(CAP)
    client.images.upload(image["id"], io.BytesIO(data))
    assert client.images.get(image["id"])["status"] == "active"
    assert b"".join(client.images.data(image["id"])) == data
    assert len(blob_files(capped)) == len(before) + 1


class ClientGone(Exception):
    pass


def test_upload_cut_off_by_the_client_leaves_the_image_queued(capped: Server) -> None:
    client = glance(capped, "spyglass-a")
    image = client.images.create(name="cut-off", disk_format="raw", container_format="bare")
    before = blob_files(capped)

    def status() -> str:
        return str(client.images.get(image["id"])["status"])

    def body() -> Iterator[bytes]:
        yield os.urandom(512 * 1024)
        deadline = time.monotonic() + 10
        while status() != "saving" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status() == "saving"
        raise ClientGone  # as a client killed mid-upload: the connection closes

    url = f"{capped.url}/image/v2/images/{image['id']}/file"
    headers = {
        "X-Auth-Token": keystone_session(capped, "spyglass-a").get_token() or "",
        "Content-Type": "application/octet-stream",
        "Content-Length": str(CAP),
    }
    with pytest.raises(ClientGone):
        httpx.put(url, content=body(), headers=headers)

    deadline = time.monotonic() + 10
    while status() != "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status() == "queued"
    assert blob_files(capped) == before

    client.images.upload(image["id"], io.BytesIO(b"second try"))
    assert b"".join(client.images.data(image["id"])) == b"second try"
    # A client going away is not a server error: no traceback in the server log.
    assert "Exception in ASGI application" not in capped.log.read_text()
