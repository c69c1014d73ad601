"""Real images made by qemu-img, in every format and several sizes: the inspector must agree with
`qemu-img info` on the virtual size, whatever the chunking, and accept them as their own format."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from spyglass.inspect import InspectionError, check, virtual_size
from tests.inspect.helpers import GIB, MIB, ImageFactory, inspect_file

SIZES = {"1M": MIB, "odd": 1_000_001, "1G+1s": GIB + 512}
SMALL_SIZES = {"1M": MIB, "odd": 5_000_001}  # for formats whose file is as big as the disk


@dataclass(frozen=True)
class Case:
    qemu_format: str  # as qemu-img calls it
    options: tuple[str, ...]
    size: int
    disk_format: str  # as Glance calls it
    variant: str | None

    def make(self, images: ImageFactory) -> Path:
        return images.create(self.qemu_format, self.size, *self.options)


def _cases() -> list[object]:
    cases: list[object] = []

    def add(name: str, case: Case) -> None:
        cases.append(pytest.param(case, id=name))

    for label, size in SIZES.items():
        for compat, version in (("0.10", "v2"), ("1.1", "v3")):
            for cluster in ("512", "65536", "2M"):
                qcow2_options = (f"compat={compat}", f"cluster_size={cluster}")
                add(
                    f"qcow2-{version}-{cluster}-{label}", Case("qcow2", qcow2_options, size, "qcow2", version)
                )
        for subformat in ("monolithicSparse", "streamOptimized"):
            options = (f"subformat={subformat}",)
            add(f"vmdk-{subformat}-{label}", Case("vmdk", options, size, "vmdk", subformat))
        add(f"vhd-dynamic-{label}", Case("vpc", (), size, "vhd", "dynamic"))
        add(f"vhd-dynamic-force-size-{label}", Case("vpc", ("force_size=on",), size, "vhd", "dynamic"))
        add(f"vhdx-{label}", Case("vhdx", (), size, "vhdx", None))
        add(f"vdi-dynamic-{label}", Case("vdi", (), size, "vdi", "dynamic"))
    for label, size in SMALL_SIZES.items():
        add(f"raw-{label}", Case("raw", (), size, "raw", None))
        add(f"vhd-fixed-{label}", Case("vpc", ("subformat=fixed",), size, "vhd", "fixed"))
        add(f"vhdx-fixed-{label}", Case("vhdx", ("subformat=fixed",), size, "vhdx", None))
        add(f"vdi-static-{label}", Case("vdi", ("static=on",), size, "vdi", "static"))
    extra = {
        "qcow2-extended-l2": Case("qcow2", ("extended_l2=on", "cluster_size=128k"), 3 * MIB, "qcow2", "v3"),
        "qcow2-lazy-refcounts": Case("qcow2", ("lazy_refcounts=on",), 3 * MIB, "qcow2", "v3"),
        "qcow2-zstd": Case("qcow2", ("compression_type=zstd",), 3 * MIB, "qcow2", "v3"),
        "qcow2-refcount-bits-1": Case("qcow2", ("refcount_bits=1",), 3 * MIB, "qcow2", "v3"),
        "qcow2-preallocated-metadata": Case("qcow2", ("preallocation=metadata",), 3 * MIB, "qcow2", "v3"),
        "qcow2-empty": Case("qcow2", (), 0, "qcow2", "v3"),
        "vmdk-zeroed-grain": Case("vmdk", ("zeroed_grain=on",), 3 * MIB, "vmdk", "monolithicSparse"),
        "vmdk-v6": Case("vmdk", ("compat6=on",), 3 * MIB, "vmdk", "monolithicSparse"),
        "vhdx-block-32M": Case("vhdx", ("block_size=33554432",), GIB, "vhdx", None),
        "vhdx-4k-sectors": Case("vhdx", ("log_size=2097152",), GIB, "vhdx", None),
        "raw-empty": Case("raw", (), 0, "raw", None),
    }
    for name, case in extra.items():
        add(name, case)
    return cases


@pytest.mark.parametrize("case", _cases())
def test_created_images_match_qemu(images: ImageFactory, case: Case) -> None:
    path = case.make(images)
    _assert_agrees(images, path, case.qemu_format, case.disk_format, case.variant)


CONVERSIONS = {
    "qcow2": ("qcow2", (), "qcow2"),
    "qcow2-compat-0.10": ("qcow2", ("compat=0.10",), "qcow2"),
    "vmdk-monolithicSparse": ("vmdk", (), "vmdk"),
    "vmdk-streamOptimized": ("vmdk", ("subformat=streamOptimized",), "vmdk"),
    "vhd-dynamic": ("vpc", (), "vhd"),
    "vhd-fixed": ("vpc", ("subformat=fixed",), "vhd"),
    "vhdx": ("vhdx", (), "vhdx"),
    "vdi": ("vdi", (), "vdi"),
}


@pytest.mark.parametrize("name", CONVERSIONS)
def test_converted_images_with_data_match_qemu(images: ImageFactory, name: str) -> None:
    qemu_format, options, disk_format = CONVERSIONS[name]
    path = images.convert(images.data(6 * MIB + 4096), qemu_format, *options)
    _assert_agrees(images, path, qemu_format, disk_format, None)


def test_result_does_not_depend_on_chunking(images: ImageFactory) -> None:
    for qemu_format, options in (("vhdx", ()), ("vmdk", ("subformat=streamOptimized",)), ("qcow2", ())):
        path = images.convert(images.data(2 * MIB, seed=1), qemu_format, *options)
        results = {inspect_file(path, seed) for seed in range(4)}
        assert len(results) == 1


def test_iso_image_matches_its_volume_size(images: ImageFactory, tmp_path: Path) -> None:
    iso = _make_iso(tmp_path)
    detected = inspect_file(iso)
    assert detected.format == "iso"
    assert detected.virtual_size == images.virtual_size(iso) == iso.stat().st_size
    check("iso", detected)
    check("raw", detected)  # an ISO is valid raw data too
    assert virtual_size("raw", detected) == iso.stat().st_size


def _make_iso(directory: Path) -> Path:
    content = directory / "content"
    content.mkdir()
    (content / "hello.txt").write_text("hello\n")
    iso = directory / "image.iso"
    tool = shutil.which("xorriso") or shutil.which("genisoimage")
    if tool is None:
        pytest.skip("neither xorriso nor genisoimage is installed")
    args = [tool, "-as", "mkisofs"] if tool.endswith("xorriso") else [tool]
    subprocess.run([*args, "-quiet", "-o", str(iso), str(content)], check=True, capture_output=True)
    return iso


def _assert_agrees(
    images: ImageFactory, path: Path, qemu_format: str, disk_format: str, variant: str | None
) -> None:
    detected = inspect_file(path, seed=path.stat().st_size)
    expected = images.virtual_size(path, qemu_format)
    assert (detected.format, detected.virtual_size) == (disk_format, expected)
    if variant is not None:
        assert detected.variant == variant
    assert detected.size == path.stat().st_size
    assert detected.hazards == ()
    check(disk_format, detected)
    assert virtual_size(disk_format, detected) == expected
    if disk_format != "raw" and detected.variant != "fixed":
        with pytest.raises(InspectionError, match="disk_format is raw"):
            check("raw", detected)
