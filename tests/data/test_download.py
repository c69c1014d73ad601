"""GET /v2/images/{id}/file: whole data and byte ranges, from a local store (the file itself) and from
a store that is not local (the in-memory store, read through BlobStore.read)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import BlobStore, FilesystemStore, MemoryStore
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import active, md5, message
from tests.conftest import Caller, World

DATA = os.urandom(3 * 1024 * 1024 + 77)
SIZE = len(DATA)


@pytest.fixture(params=["filesystem", "memory"])
def alice(request: pytest.FixtureRequest, settings: Settings, db: Database, world: World) -> Iterator[Caller]:
    store: BlobStore = FilesystemStore(settings.blob_dir) if request.param == "filesystem" else MemoryStore()
    app = create_app(settings, db=db, store=store)
    with TestClient(app, base_url="http://127.0.0.1:9292") as client:
        yield Caller(client, world.tokens["alice"])


@pytest.fixture
def url(alice: Caller) -> str:
    return f"/v2/images/{active(alice, DATA)['id']}/file"


def test_whole_data(alice: Caller, url: str) -> None:
    response = alice.get(url)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-md5"] == md5(DATA)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=10-19", 10, 20),
        ("bytes=0-0", 0, 1),
        ("bytes=1048570-2097160", 1048570, 2097161),
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE),
        (f"bytes=100-{SIZE + 5000}", 100, SIZE),  # the end is clipped to the data
        ("bytes=4096-", 4096, SIZE),
        ("bytes=-500", SIZE - 500, SIZE),
        (f"bytes=-{SIZE * 2}", 0, SIZE),  # a suffix longer than the data is all of it
        ("bytes = 5 - 9", 5, 10),
        ("BYTES=5-9", 5, 10),
    ],
)
def test_one_range_206(alice: Caller, url: str, header: str, start: int, end: int) -> None:
    response = alice.get(url, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["content-type"] == "application/octet-stream"
    assert "content-md5" not in response.headers


def test_several_ranges_serve_the_first_satisfiable_one(alice: Caller, url: str) -> None:
    response = alice.get(url, headers={"Range": f"bytes={SIZE + 10}-, 20-29, 50-59"})
    assert response.status_code == 206
    assert response.content == DATA[20:30]
    assert response.headers["content-range"] == f"bytes 20-29/{SIZE}"


@pytest.mark.parametrize(
    "header", [f"bytes={SIZE}-", f"bytes={SIZE + 1}-{SIZE + 9}", "bytes=-0", f"bytes={SIZE}-,-0"]
)
def test_unsatisfiable_range_416(alice: Caller, url: str, header: str) -> None:
    response = alice.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert "content-md5" not in response.headers
    assert "not satisfiable" in message(response)


@pytest.mark.parametrize(
    "header",
    [
        "items=0-9",
        "bytes=9-0",
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "bytes",
        "bytes=1-2-3",
        "bytes=1" + "0" * 30 + "-",
    ],
)
def test_a_range_header_that_cannot_be_read_is_ignored(alice: Caller, url: str, header: str) -> None:
    response = alice.get(url, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-md5"] == md5(DATA)


def test_if_range_does_not_matter(alice: Caller, url: str) -> None:
    response = alice.get(url, headers={"Range": "bytes=0-9", "If-Range": '"some-other-etag"'})
    assert (response.status_code, response.content) == (206, DATA[:10])


def test_range_of_an_empty_image_416(alice: Caller) -> None:
    url = f"/v2/images/{active(alice, b'')['id']}/file"
    response = alice.get(url, headers={"Range": "bytes=0-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"
    assert alice.get(url).status_code == 200


def test_range_on_an_image_without_data_204(alice: Caller) -> None:
    image = alice.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
    response = alice.get(f"/v2/images/{image['id']}/file", headers={"Range": "bytes=0-9"})
    assert response.status_code == 204


def test_head_gives_the_headers_without_the_data_and_is_not_a_download(alice: Caller, url: str) -> None:
    image_id = url.split("/")[3]
    for headers, status, length in (({}, 200, SIZE), ({"Range": "bytes=10-19"}, 206, 10)):
        response = alice.request("HEAD", url, headers=headers)
        assert response.status_code == status
        assert response.headers["content-length"] == str(length)
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.content == b""
    assert alice.request("HEAD", url, headers={"Range": "bytes=-0"}).status_code == 416
    assert alice.get(f"/v2/images/{image_id}/usage").json()["usage"] == []
