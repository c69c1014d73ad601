"""An upload larger than SPYGLASS_IMAGE_SIZE_CAP: every client gets a 413 and nothing is left behind."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from glanceclient import exc

from tests.e2e.clients import glance, random_file
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
    assert blob_files(capped) == []


def test_streamed_upload_over_the_cap_leaves_the_image_queued(capped: Server) -> None:
    client = glance(capped, "spyglass-b")
    image = client.images.create(name="capped", disk_format="raw", container_format="bare")
    # Without image_size glanceclient sends the body chunked: the server only learns the size by reading.
    with pytest.raises(exc.HTTPOverLimit):
        client.images.upload(image["id"], io.BytesIO(os.urandom(CAP + 4096)))
    assert client.images.get(image["id"])["status"] == "queued"
    assert blob_files(capped) == []

    data = os.urandom(CAP)
    client.images.upload(image["id"], io.BytesIO(data))
    assert client.images.get(image["id"])["status"] == "active"
    assert b"".join(client.images.data(image["id"])) == data
    assert len(blob_files(capped)) == 1
