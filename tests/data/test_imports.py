"""Interoperable import: PUT /stage, POST /import with glance-direct and web-download, GET /v2/info/import.

Imports run in the background of the application: the tests poll the image until it settles.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spyglass.settings import Settings
from tests.api.helpers import OCTET, create, md5, message, upload
from tests.conftest import Callers, World, reconfigure
from tests.disk_images import qcow2
from tests.http_source import HttpSource, http_source

DATA = os.urandom(5 * 1024 * 1024 + 3)
STORE = "fs"


@pytest.fixture
def source() -> Iterator[HttpSource]:
    with http_source() as running:
        yield running


def configure(api: Callers, **changes: Any) -> None:
    reconfigure(api.alice.client, **changes)


@pytest.fixture
def local(api: Callers) -> None:
    """Let web-download reach the test's own HTTP server on 127.0.0.1."""
    configure(api, web_download_allowed_networks=("127.0.0.1/32",))


def settle(api: Callers, image_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        image: dict[str, Any] = api.alice.get(f"/v2/images/{image_id}").json()
        if image["status"] not in ("importing", "saving") or time.monotonic() > deadline:
            return image
        time.sleep(0.02)


def stage(api: Callers, image_id: str, data: bytes) -> Any:
    return api.alice.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)


def import_(api: Callers, image_id: str, method: str = "glance-direct", **extra: Any) -> Any:
    return api.alice.post(f"/v2/images/{image_id}/import", json={"method": {"name": method, **extra}})


def staged_files(settings: Settings) -> list[str]:
    staging = settings.staging_dir
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def blob_files(settings: Settings) -> list[str]:
    return sorted(p.name for p in Path(settings.blob_dir).iterdir()) if settings.blob_dir.exists() else []


def assert_failed_and_clean(api: Callers, settings: Settings, image_id: str) -> dict[str, Any]:
    image = settle(api, image_id)
    assert image["status"] == "queued"
    assert (image["size"], image["checksum"], image["os_hash_value"], image["virtual_size"]) == (None,) * 4
    assert "os_glance_import_task" not in image
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == STORE
    assert blob_files(settings) == []
    assert staged_files(settings) == []
    return image


# ---- discovery ------------------------------------------------------------------------------------------


def test_create_announces_the_import_methods(api: Callers) -> None:
    response = api.alice.post("/v2/images", json={"name": "x"})
    assert response.headers["OpenStack-image-import-methods"] == "glance-direct,web-download,copy-image"
    assert response.headers["OpenStack-image-store-ids"] == STORE


# ---- glance-direct ----------------------------------------------------------------------------------------


def test_glance_direct(api: Callers, settings: Settings) -> None:
    image = create(api.alice, name="direct")
    response = stage(api, image["id"], DATA)
    assert (response.status_code, response.content) == (204, b"")
    staged = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (staged["status"], staged["size"], staged["checksum"]) == ("uploading", len(DATA), md5(DATA))
    assert staged_files(settings) == [image["id"]]
    assert api.alice.get(f"/v2/images/{image['id']}/file").status_code == 204

    response = import_(api, image["id"])
    assert response.status_code == 202
    done = settle(api, image["id"])
    assert done["status"] == "active"
    assert (done["size"], done["virtual_size"], done["checksum"]) == (len(DATA), len(DATA), md5(DATA))
    assert done["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert "os_glance_import_task" not in done
    assert (done["os_glance_importing_to_stores"], done["os_glance_failed_import"]) == ("", "")
    assert done["stores"] == STORE
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == DATA
    assert staged_files(settings) == []
    assert len(blob_files(settings)) == 1


def test_glance_direct_of_a_qcow2_keeps_its_virtual_size(api: Callers) -> None:
    image = create(api.alice, disk_format="qcow2")
    assert stage(api, image["id"], qcow2(3 * 1024**3, b"tail")).status_code == 204
    assert import_(api, image["id"]).status_code == 202
    done = settle(api, image["id"])
    assert (done["status"], done["virtual_size"]) == ("active", 3 * 1024**3)


@pytest.mark.parametrize(
    ("disk_format", "data", "refusal"),
    [("raw", qcow2(1024**2), "disk_format is raw"), ("qcow2", b"raw bytes", "not qcow2")],
)
def test_stage_refused_by_inspection(
    api: Callers, settings: Settings, disk_format: str, data: bytes, refusal: str
) -> None:
    image = create(api.alice, disk_format=disk_format)
    response = stage(api, image["id"], data)
    assert response.status_code == 400
    assert refusal in message(response)
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"]) == ("queued", None)
    assert staged_files(settings) == []
    assert stage(api, image["id"], b"raw after all").status_code == (204 if disk_format == "raw" else 400)


def test_stage_with_declared_md5_mismatch(api: Callers, settings: Settings) -> None:
    image = create(api.alice, **{"owner_specified.openstack.md5": md5(b"other")})
    assert stage(api, image["id"], DATA).status_code == 400
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert staged_files(settings) == []


def test_stage_over_the_size_cap_413(api: Callers, settings: Settings) -> None:
    configure(api, image_size_cap=1000)
    image = create(api.alice)
    assert stage(api, image["id"], b"x" * 1001).status_code == 413
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert staged_files(settings) == []


def test_stage_and_upload_exclude_each_other(api: Callers) -> None:
    image = create(api.alice)
    assert stage(api, image["id"], b"staged").status_code == 204
    assert stage(api, image["id"], b"again").status_code == 409
    response = api.alice.put(f"/v2/images/{image['id']}/file", content=b"direct", headers=OCTET)
    assert response.status_code == 409
    other = create(api.alice)
    upload(api.alice, other["id"], b"uploaded")
    response = stage(api, other["id"], b"late")
    assert response.status_code == 409
    assert "from active to uploading" in message(response)


def test_stage_needs_octet_stream(api: Callers) -> None:
    image = create(api.alice)
    response = api.alice.put(
        f"/v2/images/{image['id']}/stage", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_stage_and_import_by_others(api: Callers, world: World) -> None:
    image = create(api.alice)
    url = f"/v2/images/{image['id']}"
    body = {"method": {"name": "glance-direct"}}
    assert api.bob.put(f"{url}/stage", content=b"x", headers=OCTET).status_code == 404
    assert api.bob.post(f"{url}/import", json=body).status_code == 404
    assert api.rita.put(f"{url}/stage", content=b"x", headers=OCTET).status_code == 403
    assert stage(api, image["id"], b"mine").status_code == 204
    assert api.rita.post(f"{url}/import", json=body).status_code == 403
    assert api.admin.post(f"{url}/import", json=body).status_code == 202
    assert settle(api, image["id"])["status"] == "active"


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, "requires a 'method' field"),
        ({"method": "glance-direct"}, 400, "requires a 'method' field"),
        ({"method": {}}, 400, "requires a 'name' field"),
        ({"method": {"name": "hardcopy"}}, 400, "Unknown import method name 'hardcopy'"),
        ({"method": {"name": "copy-image"}}, 409, "needs to be in 'active' state"),
        ({"method": {"name": "glance-direct"}, "all_stores": "yes"}, 400, "'all_stores' must be boolean"),
        ({"method": {"name": "glance-direct"}, "stores": ["ceph"]}, 409, "Unknown scheme 'ceph'"),
        ({"method": {"name": "web-download"}}, 400, "does not pass filtering"),
        ({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}, 400, "does not pass filtering"),
        ({"method": {"name": "web-download", "uri": "ftp://example.com/x"}}, 400, "does not pass filtering"),
        ({"method": {"name": "web-download", "uri": "http:///nohost"}}, 400, "does not pass filtering"),
    ],
)
def test_import_request_refusals(api: Callers, body: Any, status: int, text: str) -> None:
    image = create(api.alice)
    response = api.alice.post(f"/v2/images/{image['id']}/import", json=body)
    assert response.status_code == status
    assert text in message(response)
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


def test_import_state_refusals(api: Callers) -> None:
    queued = create(api.alice)
    response = import_(api, queued["id"])
    assert response.status_code == 409
    assert message(response) == "Image needs to be staged before 'glance-direct' method can be used"

    done = create(api.alice)
    upload(api.alice, done["id"], b"data")
    response = import_(api, done["id"], "web-download", uri="https://example.com/x")
    assert response.status_code == 409
    assert message(response) == "Image with status active cannot be target for import"

    staged = create(api.alice)
    stage(api, staged["id"], b"data")
    response = import_(api, staged["id"], "web-download", uri="https://example.com/x")
    assert response.status_code == 409
    assert message(response) == "Image needs to be in 'queued' state to use 'web-download' method"

    unformatted = api.alice.post("/v2/images", json={"name": "no formats"}).json()
    stage(api, unformatted["id"], b"data")
    response = import_(api, unformatted["id"])
    assert response.status_code == 409
    assert message(response) == "'container_format' needs to be set before import"


def test_import_into_the_named_store(api: Callers) -> None:
    image = create(api.alice)
    stage(api, image["id"], b"data")
    body = {"method": {"name": "glance-direct"}, "stores": [STORE], "all_stores_must_succeed": True}
    assert api.alice.post(f"/v2/images/{image['id']}/import", json=body).status_code == 202
    assert settle(api, image["id"])["status"] == "active"


def test_deleting_a_staged_image_removes_its_staged_data(api: Callers, settings: Settings) -> None:
    image = create(api.alice)
    stage(api, image["id"], DATA)
    assert api.alice.delete(f"/v2/images/{image['id']}").status_code == 204
    assert staged_files(settings) == []


# ---- web-download --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("local")
def test_web_download(api: Callers, settings: Settings, source: HttpSource) -> None:
    image = create(api.alice, disk_format="qcow2")
    data = qcow2(2 * 1024**3, DATA)
    response = import_(api, image["id"], "web-download", uri=source.serve("/disk.qcow2", data))
    assert response.status_code == 202
    done = settle(api, image["id"])
    assert done["status"] == "active"
    assert (done["size"], done["virtual_size"], done["checksum"]) == (len(data), 2 * 1024**3, md5(data))
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert "os_glance_import_task" not in done
    assert (done["os_glance_importing_to_stores"], done["os_glance_failed_import"]) == ("", "")
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == data
    assert staged_files(settings) == []


@pytest.mark.usefixtures("local")
def test_web_download_follows_redirects_and_reads_unsized_bodies(api: Callers, source: HttpSource) -> None:
    image = create(api.alice)
    with http_source() as elsewhere:  # another origin
        target = elsewhere.serve("/real", DATA, unsized=True)
        uri = source.redirect("/first", source.redirect("/second", target, 307), 301)
        assert import_(api, image["id"], "web-download", uri=uri).status_code == 202
        done = settle(api, image["id"])
    assert (done["status"], done["checksum"]) == ("active", md5(DATA))
    assert (source.requests, elsewhere.requests) == (["/first", "/second"], ["/real"])


def test_web_download_refuses_loopback_at_once(api: Callers, source: HttpSource) -> None:
    image = create(api.alice)
    for uri in (source.serve("/x", b"x"), "http://localhost:1/x", "http://[::1]:1/x", "http://0.0.0.0:1/x"):
        response = import_(api, image["id"], "web-download", uri=uri)
        assert response.status_code == 400, uri
        assert "may not reach" in message(response)
    assert source.requests == []
    shown = api.alice.get(f"/v2/images/{image['id']}").json()
    assert shown["status"] == "queued"
    assert "os_glance_failed_import" not in shown


@pytest.mark.parametrize(
    "uri", ["http://a..b/x", f"https://{'x' * 64}.example.com/x", "http://[::ffff:0:7f00:1]/"]
)
def test_web_download_refuses_invalid_hosts_and_tunnelled_addresses_at_once(api: Callers, uri: str) -> None:
    image = create(api.alice)
    response = import_(api, image["id"], "web-download", uri=uri)
    assert response.status_code == 400, response.text
    assert "does not pass filtering" in message(response)
    assert api.alice.get(f"/v2/images/{image['id']}").json()["status"] == "queued"


@pytest.mark.usefixtures("local")
@pytest.mark.parametrize(
    "target",
    [
        "http://a..b/x",
        "http://[64:ff9b::7f00:2]/x",
        "http://127.0.0.2:9/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x",
    ],
)
def test_web_download_refuses_a_redirect_inside(
    api: Callers, settings: Settings, source: HttpSource, target: str
) -> None:
    image = create(api.alice)
    assert import_(api, image["id"], "web-download", uri=source.redirect("/go", target)).status_code == 202
    assert_failed_and_clean(api, settings, image["id"])


@pytest.mark.usefixtures("local")
def test_web_download_failures_leave_the_image_queued(
    api: Callers, settings: Settings, source: HttpSource
) -> None:
    cases = {
        "missing": source.base + "/missing",
        "hostile": source.serve("/backing.qcow2", _with_backing_file(qcow2(1024**2))),
        "mismatch": source.serve("/raw-as-qcow2", b"raw bytes"),
        "truncated": source.serve("/short", DATA, headers={"Content-Length": str(len(DATA) + 10)}),
        "loop": source.redirect("/loop", "/loop"),
    }
    for name, uri in cases.items():
        image = create(api.alice, name=name, disk_format="qcow2")
        assert import_(api, image["id"], "web-download", uri=uri).status_code == 202, name
        assert_failed_and_clean(api, settings, image["id"])
    # A failed image can be imported again.
    retry = source.serve("/good.qcow2", qcow2(1024**2))
    image = api.alice.get("/v2/images?name=hostile").json()["images"][0]
    assert import_(api, image["id"], "web-download", uri=retry).status_code == 202
    done = settle(api, image["id"])
    assert (done["status"], done["os_glance_failed_import"]) == ("active", "")


@pytest.mark.usefixtures("local")
def test_web_download_size_cap_and_timeout(api: Callers, settings: Settings, source: HttpSource) -> None:
    configure(api, image_size_cap=1024**2)
    image = create(api.alice)
    assert import_(api, image["id"], "web-download", uri=source.serve("/big", DATA)).status_code == 202
    assert_failed_and_clean(api, settings, image["id"])

    configure(api, image_size_cap=1024**3, web_download_timeout_seconds=1)
    image = create(api.alice)
    uri = source.serve("/slow", b"late bytes", stall=3)
    assert import_(api, image["id"], "web-download", uri=uri).status_code == 202
    assert_failed_and_clean(api, settings, image["id"])


@pytest.mark.usefixtures("local")
def test_web_download_checks_declared_digests(api: Callers, settings: Settings, source: HttpSource) -> None:
    image = create(api.alice, **{"owner_specified.openstack.sha256": hashlib.sha256(b"other").hexdigest()})
    assert import_(api, image["id"], "web-download", uri=source.serve("/d", DATA)).status_code == 202
    assert_failed_and_clean(api, settings, image["id"])


def _with_backing_file(data: bytes) -> bytes:
    name = b"/etc/shadow"
    header = bytearray(data[:65536])
    header[8:16] = (200).to_bytes(8, "big")
    header[16:20] = len(name).to_bytes(4, "big")
    header[200 : 200 + len(name)] = name
    return bytes(header) + data[65536:]
