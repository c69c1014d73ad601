"""PUT and GET /v2/images/{id}/file: hashing, sizes, refusals, and nothing half-written left behind."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from spyglass.api.app import create_app
from spyglass.blobs import BlobStoreFull, FilesystemStore, MemoryStore
from spyglass.blobs.memory import MemoryWriter
from spyglass.db.engine import Database
from spyglass.settings import Settings
from tests.api.helpers import OCTET, active, create, md5, message, upload
from tests.conftest import Caller, Callers, World, reconfigure
from tests.disk_images import qcow2

UNKNOWN = "00000000-0000-0000-0000-000000000000"
DATA = bytes(range(256)) * 4096  # 1 MiB


def blobs(settings: Settings) -> list[str]:
    return sorted(p.name for p in Path(settings.blob_dir).iterdir()) if settings.blob_dir.exists() else []


def status(api: Callers, image_id: str) -> str:
    value: str = api.alice.get(f"/v2/images/{image_id}").json()["status"]
    return value


def set_cap(api: Callers, cap: int) -> None:
    reconfigure(api.alice.client, image_size_cap=cap)


def test_upload_sets_hashes_and_sizes(api: Callers) -> None:
    image = create(api.alice)
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=DATA, headers=OCTET)
    assert response.status_code == 204
    assert response.content == b""
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(DATA)
    assert shown["virtual_size"] == len(DATA)
    assert shown["checksum"] == md5(DATA)
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert shown["stores"] == "fs"


def test_virtual_size_comes_from_the_data(api: Callers) -> None:
    image = active(api.alice, qcow2(10 * 1024**3, b"data"), disk_format="qcow2")
    assert image["virtual_size"] == 10 * 1024**3
    assert image["size"] == len(qcow2(10 * 1024**3, b"data"))
    # Formats that cannot be inspected keep it unknown, as Glance does.
    assert active(api.alice, b"kernel", disk_format="aki", container_format="aki")["virtual_size"] is None


@pytest.mark.parametrize(
    ("disk_format", "data", "refusal"),
    [
        ("qcow2", b"image-bytes", "not qcow2 as its disk_format says"),
        ("iso", b"image-bytes", "not iso as its disk_format says"),
        ("raw", qcow2(1024**2), "disk_format is raw"),
        ("qcow2", qcow2(1024**2)[:100], "truncated"),
    ],
)
def test_data_the_inspection_refuses_400(
    api: Callers, settings: Settings, disk_format: str, data: bytes, refusal: str
) -> None:
    image = create(api.alice, disk_format=disk_format)
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET)
    assert response.status_code == 400
    assert refusal in message(response)
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["checksum"], shown["virtual_size"]) == (
        "queued",
        None,
        None,
        None,
    )
    assert blobs(settings) == []


def test_structural_refusal_during_a_long_stream(api: Callers, settings: Settings) -> None:
    image = create(api.alice, disk_format="qcow2")
    broken = qcow2(1024**3)[:4] + b"\0\0\0\x09" + qcow2(1024**3)[8:]  # qcow2 version 9

    def chunks() -> Iterator[bytes]:
        yield broken
        for _ in range(16):
            yield bytes(1024 * 1024)

    response = api.alice.put(f"/v2/images/{image['id']}/file", content=chunks(), headers=OCTET)
    assert response.status_code == 400
    assert "unknown version (9)" in message(response)
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []


def test_inspection_can_be_turned_off(api: Callers) -> None:
    reconfigure(api.alice.client, disk_format_inspection=False)
    image = active(api.alice, b"not really a qcow2", disk_format="qcow2")
    assert (image["status"], image["virtual_size"]) == ("active", None)


def test_empty_upload(api: Callers) -> None:
    image = active(api.alice, b"")
    assert (image["status"], image["size"], image["checksum"]) == ("active", 0, md5(b""))
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == b""


def test_upload_without_content_type_is_octet_stream(api: Callers) -> None:
    image = create(api.alice)
    assert api.alice.put(f"/v2/images/{image['id']}/file", content=b"abc").status_code == 204


def test_chunked_upload(api: Callers) -> None:
    image = create(api.alice)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(DATA), 100_000):
            yield DATA[i : i + 100_000]

    response = api.alice.put(f"/v2/images/{image['id']}/file", content=chunks(), headers=OCTET)
    assert response.status_code == 204
    assert api.alice.get(f"/v2/images/{image['id']}").json()["checksum"] == md5(DATA)


def test_download(api: Callers) -> None:
    image = active(api.alice, DATA)
    response = api.alice.get(f"/v2/images/{image['id']}/file")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-md5"] == md5(DATA)
    assert response.headers["content-length"] == str(len(DATA))
    assert "x-openstack-request-id" in response.headers


def test_download_under_image_prefix(api: Callers) -> None:
    image = active(api.alice, b"prefixed")
    assert api.alice.get(f"/image/v2/images/{image['id']}/file").content == b"prefixed"


def test_download_of_a_queued_image_204(api: Callers) -> None:
    image = create(api.alice)
    response = api.alice.get(f"/v2/images/{image['id']}/file")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-md5" not in response.headers


def test_download_by_others(api: Callers, world: World) -> None:
    image = active(api.alice, b"shared-bytes")
    assert api.bob.get(f"/v2/images/{image['id']}/file").status_code == 404
    api.alice.post(f"/v2/images/{image['id']}/members", json={"member": world.projects["beta"]})
    assert api.bob.get(f"/v2/images/{image['id']}/file").content == b"shared-bytes"
    # The owner project's reader: Glance's download_image default needs the member role.
    assert api.rita.get(f"/v2/images/{image['id']}/file").status_code == 403
    assert api.alice.get(f"/v2/images/{UNKNOWN}/file").status_code == 404
    assert api.alice.get("/v2/images/nope/file").status_code == 404


def test_second_upload_409(api: Callers, settings: Settings) -> None:
    image = active(api.alice, b"first")
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"second", headers=OCTET)
    assert response.status_code == 409
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == b"first"
    assert len(blobs(settings)) == 1


def test_upload_to_a_deactivated_image_409(api: Callers) -> None:
    image = active(api.alice)
    api.alice.post(f"/v2/images/{image['id']}/actions/deactivate")
    assert api.alice.put(f"/v2/images/{image['id']}/file", content=b"x", headers=OCTET).status_code == 409


@pytest.mark.parametrize("media", ["text/plain", "application/json", "multipart/form-data"])
def test_upload_with_wrong_content_type_415(api: Callers, settings: Settings, media: str) -> None:
    image = create(api.alice)
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"x", headers={"Content-Type": media})
    assert response.status_code == 415
    assert message(response) == f"Invalid content type {media}"
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []


def test_upload_by_others(api: Callers, world: World) -> None:
    image = create(api.alice)
    url = f"/v2/images/{image['id']}/file"
    assert api.bob.put(url, content=b"x", headers=OCTET).status_code == 404
    api.alice.post(f"/v2/images/{image['id']}/members", json={"member": world.projects["beta"]})
    response = api.bob.put(url, content=b"x", headers=OCTET)
    assert response.status_code == 403
    assert message(response) == "You are not authorized to complete upload_image action."
    assert api.rita.put(url, content=b"x", headers=OCTET).status_code == 403
    assert api.alice.put(f"/v2/images/{UNKNOWN}/file", content=b"x", headers=OCTET).status_code == 404
    assert status(api, image["id"]) == "queued"


def test_short_body_leaves_the_image_queued_without_data(api: Callers, settings: Settings) -> None:
    image = create(api.alice)
    headers = {**OCTET, "Content-Length": "10"}
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"abc", headers=headers)
    assert response.status_code == 400
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []
    upload(api.alice, image["id"], b"now complete")


def test_bad_content_length_400(api: Callers, settings: Settings) -> None:
    image = create(api.alice)
    headers = {**OCTET, "Content-Length": "lots"}
    assert api.alice.put(f"/v2/images/{image['id']}/file", content=b"abc", headers=headers).status_code == 400
    assert status(api, image["id"]) == "queued"


def test_declared_size_over_the_cap_413(api: Callers, settings: Settings) -> None:
    set_cap(api, 1000)
    image = create(api.alice)
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"x" * 1001, headers=OCTET)
    assert response.status_code == 413
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []
    upload(api.alice, image["id"], b"x" * 1000)


def test_streamed_size_over_the_cap_413(api: Callers, settings: Settings) -> None:
    set_cap(api, 250_000)
    image = create(api.alice)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 100_000

    response = api.alice.put(f"/v2/images/{image['id']}/file", content=chunks(), headers=OCTET)
    assert response.status_code == 413
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []


def test_declared_md5_mismatch_400(api: Callers, settings: Settings) -> None:
    image = create(api.alice, **{"owner_specified.openstack.md5": md5(b"something else")})
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"payload", headers=OCTET)
    assert response.status_code == 400
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []
    assert api.alice.get(f"/v2/images/{image['id']}/file").status_code == 204


def test_declared_md5_match(api: Callers) -> None:
    image = create(api.alice, **{"owner_specified.openstack.md5": md5(b"payload").upper()})
    upload(api.alice, image["id"], b"payload")
    assert status(api, image["id"]) == "active"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("algorithm", ["sha512", "sha256"])
def test_declared_sha256_mismatch_400(api: Callers, settings: Settings, algorithm: str) -> None:
    reconfigure(api.alice.client, hashing_algorithm=algorithm)
    declared = {
        "owner_specified.openstack.md5": md5(b"payload"),
        "owner_specified.openstack.sha256": sha256(b"other"),
    }
    image = create(api.alice, **declared)
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"payload", headers=OCTET)
    assert response.status_code == 400
    assert "sha256" in message(response)
    assert status(api, image["id"]) == "queued"
    assert blobs(settings) == []


@pytest.mark.parametrize("algorithm", ["sha512", "sha256"])
def test_declared_sha256_match(api: Callers, algorithm: str) -> None:
    reconfigure(api.alice.client, hashing_algorithm=algorithm)
    image = create(api.alice, **{"owner_specified.openstack.sha256": sha256(DATA).upper()})
    upload(api.alice, image["id"], DATA)
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["os_hash_algo"]) == ("active", algorithm)
    assert shown["os_hash_value"] == hashlib.new(algorithm, DATA).hexdigest()


def test_empty_declared_digests_are_ignored(api: Callers) -> None:
    # openstacksdk declares empty digests when it does not compute them.
    image = create(api.alice, **{"owner_specified.openstack.md5": "", "owner_specified.openstack.sha256": ""})
    upload(api.alice, image["id"], b"payload")
    assert status(api, image["id"]) == "active"


def test_body_larger_than_the_buffers_in_odd_chunks(api: Callers) -> None:
    data = os.urandom(9 * 1024 * 1024 + 12345)
    image = create(api.alice)

    def chunks() -> Iterator[bytes]:
        position, size = 0, 1
        while position < len(data):
            yield data[position : position + size]
            position, size = position + size, size * 3 + 1

    upload_response = api.alice.put(f"/v2/images/{image['id']}/file", content=chunks(), headers=OCTET)
    assert upload_response.status_code == 204
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["size"], shown["virtual_size"], shown["checksum"]) == (len(data), len(data), md5(data))
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == data


def test_a_deleted_image_s_id_stays_taken_and_its_data_goes(api: Callers, settings: Settings) -> None:
    image = active(api.alice, b"old")
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204
    # As in Glance, the id of a deleted image is not given again (tests/images/test_image_ids.py).
    assert api.alice.post("/v2/images", json={"id": image["id"]}).status_code == 409
    assert api.alice.get(f"/v2/images/{image['id']}/file").status_code == 404
    assert blobs(settings) == []


# ---- store failures --------------------------------------------------------------------------------------


class FailingWriter(MemoryWriter):
    def __init__(self, store: MemoryStore, key: str, fail: str) -> None:
        super().__init__(store, key)
        self.fail = fail

    def write(self, data: bytes | memoryview) -> None:
        if self.fail == "write":
            raise OSError(errno.EIO, "disk on fire")
        if self.fail == "full":
            raise BlobStoreFull(errno.ENOSPC, "No space left on device")
        super().write(data)

    def commit(self) -> None:
        if self.fail == "commit":
            raise OSError(errno.EIO, "disk on fire")
        super().commit()


class FailingStore(MemoryStore):
    def __init__(self, fail: str) -> None:
        super().__init__()
        self.fail = fail

    def writer(self, key: str) -> MemoryWriter:
        if self.fail == "open":
            raise OSError(errno.EACCES, "Permission denied")
        return FailingWriter(self, key, self.fail)


@pytest.fixture
def failing(
    settings: Settings, db: Database, world: World, request: pytest.FixtureRequest
) -> Iterator[Caller]:
    store = FailingStore(request.param)
    app = create_app(settings, db=db, store=store)
    with TestClient(app, base_url="http://127.0.0.1:9292", raise_server_exceptions=False) as client:
        caller = Caller(client, world.tokens["alice"])
        caller.store = store  # type: ignore[attr-defined]
        yield caller


@pytest.mark.parametrize("failing", ["open", "write", "commit"], indirect=True)
def test_store_failure_500_leaves_the_image_queued(failing: Caller) -> None:
    image = create(failing)
    response = failing.put(f"/v2/images/{image['id']}/file", content=b"abc", headers=OCTET)
    assert response.status_code == 500
    assert failing.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert failing.store.blobs == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("failing", ["full"], indirect=True)
def test_full_store_413(failing: Caller) -> None:
    image = create(failing)
    response = failing.put(f"/v2/images/{image['id']}/file", content=b"abc", headers=OCTET)
    assert response.status_code == 413
    assert message(response) == "Image storage media is full."
    assert failing.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


@pytest.mark.parametrize("direct_io", [True, False])
def test_filesystem_store_translates_a_full_disk(tmp_path: Path, direct_io: bool) -> None:
    store = FilesystemStore(tmp_path, direct_io=direct_io)
    writer = store.writer("k")
    # The partial file's descriptor now writes to /dev/full, which answers every write with ENOSPC.
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, writer._fd)  # type: ignore[attr-defined]
    os.close(full)
    with pytest.raises(BlobStoreFull):
        writer.write(b"x" * 100_000)
        writer.commit()
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_download_of_a_lost_blob_204(api: Callers, settings: Settings) -> None:
    image = active(api.alice, b"soon gone")
    for path in Path(settings.blob_dir).iterdir():
        path.unlink()
    response = api.alice.get(f"/v2/images/{image['id']}/file")
    assert response.status_code == 204
