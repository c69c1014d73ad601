"""Real images made by qemu-img, through every way data enters: PUT /file, stage + glance-direct, and
web-download. Each format's virtual_size must be what `qemu-img info` says; hostile and mislabelled
images must be refused with nothing kept, the image left `queued`."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import OCTET, create, md5, message
from tests.conftest import Callers, app_settings, reconfigure
from tests.http_source import HttpSource, http_source
from tests.inspect.helpers import MIB, ImageFactory

ROOT = Path(__file__).resolve().parents[2]
# disk_format -> (qemu-img format, options) for images converted from the same random data.
FORMATS = {
    "raw": ("raw", ()),
    "qcow2": ("qcow2", ()),
    "qcow2-v2": ("qcow2", ("compat=0.10",)),
    "vmdk": ("vmdk", ()),
    "vmdk-stream": ("vmdk", ("subformat=streamOptimized",)),
    "vhd": ("vpc", ()),
    "vhd-fixed": ("vpc", ("subformat=fixed",)),
    "vhdx": ("vhdx", ()),
    "vdi": ("vdi", ()),
}
WAYS = ("upload", "glance-direct", "web-download")


@pytest.fixture(scope="session")
def disk_images(tmp_path_factory: pytest.TempPathFactory) -> ImageFactory:
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        installed = subprocess.run(
            [str(ROOT / "scripts" / "ensure-qemu-img.sh")], capture_output=True, text=True
        )
        qemu_img = installed.stdout.strip() if installed.returncode == 0 else None
    if not qemu_img:
        pytest.skip("qemu-img is not installed and scripts/ensure-qemu-img.sh could not install it")
    return ImageFactory(qemu_img, tmp_path_factory.mktemp("disk-images"))


@pytest.fixture
def source(api: Callers) -> Iterator[HttpSource]:
    reconfigure(api.alice.client, web_download_allowed_networks=("127.0.0.1/32",))
    with http_source() as running:
        yield running


def send(api: Callers, source: HttpSource, way: str, data: bytes, **body: Any) -> tuple[dict[str, Any], str]:
    """Create an image and put `data` into it the given way; the image once settled, and the refusal
    message if the data was refused synchronously."""
    image = create(api.alice, container_format="bare", **body)
    url = f"/v2/images/{image['id']}"
    refusal = ""
    if way == "web-download":
        uri = source.serve(f"/{image['id']}", data)
        response = api.alice.post(f"{url}/import", json={"method": {"name": way, "uri": uri}})
        assert response.status_code == 202
    else:
        response = api.alice.put(
            f"{url}/{'file' if way == 'upload' else 'stage'}", content=data, headers=OCTET
        )
        if response.status_code == 400:
            refusal = message(response)
        elif way == "glance-direct":
            assert response.status_code == 204, response.text
            assert api.alice.post(f"{url}/import", json={"method": {"name": way}}).status_code == 202
    deadline = time.monotonic() + 30
    while True:
        shown: dict[str, Any] = api.alice.get(url).json()
        if shown["status"] not in ("importing", "saving") or time.monotonic() > deadline:
            return shown, refusal
        time.sleep(0.02)


def assert_refused(api: Callers, image: dict[str, Any], refusal: str, way: str, pattern: str) -> None:
    assert image["status"] == "queued"
    assert (image["size"], image["checksum"], image["virtual_size"]) == (None, None, None)
    if way == "web-download":
        assert image["os_glance_failed_import"] == "fs"
    else:
        assert pattern in refusal
    assert api.alice.get(f"/v2/images/{image['id']}/file").status_code == 204
    data_dir = Path(app_settings(api.alice.client).data_dir)
    for area in ("images", "staging"):
        assert not (data_dir / area).exists() or list((data_dir / area).iterdir()) == []


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", FORMATS)
def test_every_format_gets_the_virtual_size_qemu_sees(
    api: Callers, source: HttpSource, disk_images: ImageFactory, name: str, way: str
) -> None:
    qemu_format, options = FORMATS[name]
    raw = disk_images.data(5 * MIB + 4096)
    path = raw if qemu_format == "raw" else disk_images.convert(raw, qemu_format, *options)
    data = path.read_bytes()
    image, refusal = send(api, source, way, data, disk_format=name.split("-")[0])
    assert (image["status"], refusal) == ("active", "")
    assert image["virtual_size"] == disk_images.virtual_size(path, qemu_format)
    assert (image["size"], image["checksum"]) == (len(data), md5(data))
    assert api.alice.get(f"/v2/images/{image['id']}/file").content == data


@pytest.mark.parametrize("way", WAYS)
def test_qcow2_with_a_backing_file_is_refused(
    api: Callers, source: HttpSource, disk_images: ImageFactory, way: str
) -> None:
    base = disk_images.create("raw", MIB)
    top = disk_images.create("qcow2", MIB, backing=("-b", str(base), "-F", "raw"))
    for disk_format in ("qcow2", "raw"):
        image, refusal = send(api, source, way, top.read_bytes(), disk_format=disk_format)
        assert_refused(api, image, refusal, way, "has a backing file")


@pytest.mark.parametrize("way", WAYS)
def test_qcow2_with_an_external_data_file_is_refused(
    api: Callers, source: HttpSource, disk_images: ImageFactory, way: str
) -> None:
    image_file = disk_images.create("qcow2", MIB, f"data_file={disk_images.directory / 'external.raw'}")
    image, refusal = send(api, source, way, image_file.read_bytes(), disk_format="qcow2")
    assert_refused(api, image, refusal, way, "external data file")


@pytest.mark.parametrize("way", WAYS)
def test_raw_declared_qcow2_is_refused(
    api: Callers, source: HttpSource, disk_images: ImageFactory, way: str
) -> None:
    image, refusal = send(api, source, way, disk_images.data(MIB).read_bytes(), disk_format="qcow2")
    assert_refused(api, image, refusal, way, "not qcow2 as its disk_format says")


@pytest.mark.parametrize("way", WAYS)
def test_qcow2_declared_raw_is_refused(
    api: Callers, source: HttpSource, disk_images: ImageFactory, way: str
) -> None:
    path = disk_images.convert(disk_images.data(2 * MIB), "qcow2")
    image, refusal = send(api, source, way, path.read_bytes(), disk_format="raw")
    assert_refused(api, image, refusal, way, "disk_format is raw")


@pytest.mark.parametrize("way", WAYS)
def test_vmdk_descriptor_with_external_extent_is_refused(
    api: Callers, source: HttpSource, disk_images: ImageFactory, way: str
) -> None:
    descriptor = (
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
        'RW 2048 FLAT "/etc/hostname" 0\n'
    )
    image, refusal = send(api, source, way, descriptor.encode(), disk_format="vmdk")
    assert_refused(api, image, refusal, way, "descriptor file")
