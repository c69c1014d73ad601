"""Structurally invalid images declared as their format: truncated headers and absurd header values.

Each is refused (by the inspector or by `check`) with a message naming the problem.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spyglass.inspect import InspectionError, check, vhdx
from tests.inspect import crafting
from tests.inspect.helpers import MIB, ImageFactory, inspect_bytes, inspect_file, patched

Recipe = tuple[str, str, tuple[str, ...]]  # disk_format, qemu format, creation options
RECIPES: dict[str, Recipe] = {
    "qcow2-v2": ("qcow2", "qcow2", ("compat=0.10",)),
    "qcow2-v3": ("qcow2", "qcow2", ()),
    "vmdk-monolithicSparse": ("vmdk", "vmdk", ()),
    "vmdk-streamOptimized": ("vmdk", "vmdk", ("subformat=streamOptimized",)),
    "vhd-dynamic": ("vhd", "vpc", ()),
    "vhd-fixed": ("vhd", "vpc", ("subformat=fixed",)),
    "vhdx": ("vhdx", "vhdx", ()),
    "vdi": ("vdi", "vdi", ()),
}
# Cut points: inside each structure the parser reads, in stream order (negative: from the end).
CUTS: dict[str, tuple[int, ...]] = {
    "qcow2-v2": (0, 3, 71, 1000, -1),
    "qcow2-v3": (3, 100, 1000, -1),
    "vmdk-monolithicSparse": (3, 78, 600, 10000, -1),
    "vmdk-streamOptimized": (3, 600, 10000, -1),
    "vhd-dynamic": (100, 511, 1000, 1539),
    "vhd-fixed": (100, -1),
    "vhdx": (8, 100 * 1024, 200 * 1024, 3 * MIB + 100, 3 * MIB + 65540, 4 * MIB - 1),
    "vdi": (100, 400, 515),
}


def _image(images: ImageFactory, name: str) -> bytes:
    _disk_format, qemu_format, options = RECIPES[name]
    return images.create(qemu_format, MIB, *options).read_bytes()


@pytest.mark.parametrize(
    ("name", "cut"),
    [(name, cut) for name, cuts in CUTS.items() for cut in cuts],
    ids=lambda value: str(value),
)
def test_truncated_images_are_refused(images: ImageFactory, name: str, cut: int) -> None:
    disk_format = RECIPES[name][0]
    data = _image(images, name)
    check(disk_format, inspect_bytes(data))  # the whole image passes...
    with pytest.raises(InspectionError, match=r"truncated|not \w+ as its disk_format says"):
        check(disk_format, inspect_bytes(data[:cut], cuts=[cut // 2]))  # ...a prefix does not


Patch = Callable[[bytes], bytes]


def _field(offset: int, fmt: str, value: int | bytes) -> Patch:
    return lambda data: patched(data, offset, fmt, value)


def _vhdx_region_offset(value: int) -> Patch:
    return lambda data: patched(
        data, crafting.vhdx_region_entry(data, vhdx.METADATA_REGION) + 16, "<Q", value
    )


def _vhdx_item(guid: bytes, fmt: str, value: int, delta: int = 0) -> Patch:
    return lambda data: patched(data, crafting.vhdx_item_value(data, guid) + delta, fmt, value)


def _vhdx_metadata(offset: int, fmt: str, value: int | bytes) -> Patch:
    return lambda data: patched(data, crafting.vhdx_metadata_offset(data) + offset, fmt, value)


def _vhdx_unknown_required_item(data: bytes) -> bytes:
    entry = crafting.vhdx_item_entry(data, vhdx.PAGE_83_DATA)
    return patched(patched(data, entry, "16s", b"\x42" * 16), entry + 24, "<I", 4)


def _vhdx_unknown_required_region(data: bytes) -> bytes:
    table = vhdx.REGION_TABLE_OFFSET
    data = patched(data, table + 8, "<I", 3)
    return patched(data, table + 16 + 2 * 32, "<16sQII", b"\x42" * 16, 5 * MIB, MIB, 1)


def _vhd_footer(offset: int, fmt: str, value: int | bytes) -> Patch:
    return lambda data: crafting.with_vhd_footer_field(data, offset, fmt, value)


ABSURD: dict[str, tuple[str, Patch, str]] = {
    "qcow2-cluster-bits-8": ("qcow2-v3", _field(20, ">I", 8), "cluster_bits is 8, outside 9..21"),
    "qcow2-cluster-bits-22": ("qcow2-v3", _field(20, ">I", 22), "cluster_bits is 22"),
    "qcow2-size-2**63": ("qcow2-v3", _field(24, ">Q", 2**63), "2\\*\\*63 bytes or more"),
    "qcow2-version-4": ("qcow2-v3", _field(4, ">I", 4), "unknown version \\(4\\)"),
    "qcow2-version-1": ("qcow2-v3", _field(4, ">I", 1), "qcow version 1"),
    "qcow2-l1-huge": ("qcow2-v3", _field(36, ">I", 2**31), "L1 table of 2147483648 entries is too large"),
    "qcow2-l1-too-small": ("qcow2-v3", _field(24, ">Q", 2**40), "cannot map"),
    "qcow2-l1-unaligned": ("qcow2-v3", _field(40, ">Q", 12345), "not cluster-aligned"),
    "qcow2-refcount-clusters": ("qcow2-v3", _field(56, ">I", 0), "refcount table clusters"),
    "qcow2-refcount-order": ("qcow2-v3", _field(96, ">I", 7), "refcount order 7"),
    "qcow2-header-length": ("qcow2-v3", _field(100, ">I", 50), "header length 50"),
    "qcow2-encryption": ("qcow2-v2", _field(32, ">I", 9), "unknown encryption method 9"),
    "vmdk-version": ("vmdk-monolithicSparse", _field(4, "<I", 9), "unknown version 9"),
    "vmdk-grain-0": ("vmdk-monolithicSparse", _field(20, "<Q", 0), "grain size of 0"),
    "vmdk-grain-3": ("vmdk-monolithicSparse", _field(20, "<Q", 3), "grain size of 3"),
    "vmdk-grain-huge": ("vmdk-monolithicSparse", _field(20, "<Q", 2**30), "grain size of 1073741824"),
    "vmdk-gtes-0": ("vmdk-monolithicSparse", _field(44, "<I", 0), "0 entries per grain table"),
    "vmdk-gtes-huge": ("vmdk-monolithicSparse", _field(44, "<I", 100000), "100000 entries"),
    "vmdk-capacity": ("vmdk-monolithicSparse", _field(12, "<Q", 2**62), "capacity of 4611686018427387904"),
    "vmdk-no-descriptor": ("vmdk-monolithicSparse", _field(28, "<Q", 0), "no embedded descriptor"),
    "vmdk-empty-descriptor": ("vmdk-monolithicSparse", _field(36, "<Q", 0), "descriptor is empty"),
    "vmdk-far-descriptor": ("vmdk-monolithicSparse", _field(28, "<Q", 5000), "not within the first MiB"),
    "vmdk-no-create-type": (
        "vmdk-monolithicSparse",
        lambda data: crafting.with_vmdk_descriptor(data, "# Disk DescriptorFile\nversion=1\n"),
        "no createType",
    ),
    "vmdk-missing-footer": (
        "vmdk-streamOptimized",
        _field(56, "<Q", 2**64 - 1),
        "footer is missing or invalid",
    ),
    "vmdk-cowd": ("vmdk-monolithicSparse", _field(0, "4s", b"COWD"), "COWD"),
    "vhd-disk-type": ("vhd-dynamic", _vhd_footer(60, ">I", 7), "unknown type 7"),
    "vhd-fixed-at-start": ("vhd-dynamic", _vhd_footer(60, ">I", 2), "describes a fixed disk"),
    "vhd-header-offset": ("vhd-dynamic", _vhd_footer(16, ">Q", 0), "inside itself"),
    "vhd-huge": (
        "vhd-dynamic",
        lambda d: _vhd_footer(48, ">Q", 2**50)(_vhd_footer(28, "4s", b"qem2")(d)),
        "2 TiB",
    ),
    "vhd-cookie": ("vhd-dynamic", _field(512, "8s", b"notsparse"[:8]), "no cxsparse signature"),
    "vhd-block-size": ("vhd-dynamic", _field(512 + 32, ">I", 3), "block size 3"),
    "vhd-table": ("vhd-dynamic", _field(512 + 28, ">I", 0), "0 entries does not fit"),
    "vhdx-signature": ("vhdx", _field(vhdx.REGION_TABLE_OFFSET, "4s", b"nope"), "region table is missing"),
    "vhdx-regions": ("vhdx", _field(vhdx.REGION_TABLE_OFFSET + 8, "<I", 5000), "claims 5000 entries"),
    "vhdx-region-offset": ("vhdx", _vhdx_region_offset(0x1234), "invalid offset"),
    "vhdx-region-unknown": ("vhdx", _vhdx_unknown_required_region, "requires a region"),
    "vhdx-metadata-signature": ("vhdx", _vhdx_metadata(0, "8s", b"notmeta!"), "'metadata' signature"),
    "vhdx-metadata-count": ("vhdx", _vhdx_metadata(10, "<H", 3000), "claims 3000 entries"),
    "vhdx-item-unknown": ("vhdx", _vhdx_unknown_required_item, "requires a metadata item"),
    "vhdx-size-unaligned": ("vhdx", _vhdx_item(vhdx.VIRTUAL_DISK_SIZE, "<Q", 1000), "virtual disk size 1000"),
    "vhdx-size-huge": ("vhdx", _vhdx_item(vhdx.VIRTUAL_DISK_SIZE, "<Q", 2**60), "virtual disk size"),
    "vhdx-sector-size": (
        "vhdx",
        _vhdx_item(vhdx.LOGICAL_SECTOR_SIZE, "<I", 1000),
        "logical sector size 1000",
    ),
    "vhdx-block-size": ("vhdx", _vhdx_item(vhdx.FILE_PARAMETERS, "<I", 3), "block size 3"),
    "vdi-version": ("vdi", _field(68, "<I", 0x00020000), "version 0x00020000"),
    "vdi-type": ("vdi", _field(76, "<I", 3), "unknown image type 3"),
    "vdi-sector-size": ("vdi", _field(360, "<I", 4096), "sector size 4096"),
    "vdi-block-size": ("vdi", _field(376, "<I", 2 * MIB), "block size 2097152"),
    "vdi-disk-size": ("vdi", _field(368, "<Q", 2**40), "does not fit"),
    "vdi-alignment": ("vdi", _field(340, "<I", 513), "not sector-aligned"),
}


@pytest.mark.parametrize("case", ABSURD)
def test_absurd_header_values_are_refused(images: ImageFactory, case: str) -> None:
    name, patch, message = ABSURD[case]
    data = patch(_image(images, name))
    with pytest.raises(InspectionError, match=message):
        check(RECIPES[name][0], inspect_bytes(data, cuts=[1, 513, 70000]))


def test_stream_optimized_footer_is_read_like_qemu(images: ImageFactory) -> None:
    source = images.convert(images.data(3 * MIB), "vmdk", "subformat=streamOptimized").read_bytes()
    for capacity in (None, 12345 * 2048):
        path = images.directory / f"footer-{capacity}.vmdk"
        path.write_bytes(crafting.with_vmdk_footer(source, capacity))
        detected = inspect_file(path)
        assert detected.virtual_size == images.virtual_size(path, "vmdk")
        check("vmdk", detected)
    assert detected.virtual_size == 12345 * 2048 * 512


def test_stream_optimized_footer_with_absurd_values(images: ImageFactory) -> None:
    source = images.convert(images.data(3 * MIB), "vmdk", "subformat=streamOptimized").read_bytes()
    crafted = crafting.with_vmdk_footer(source)
    footer_header = len(crafted) - 1024
    with pytest.raises(InspectionError, match="footer is invalid: grain size of 0"):
        inspect_bytes(patched(crafted, footer_header + 20, "<Q", 0))
    with pytest.raises(InspectionError, match="footer does not locate the grain directory"):
        inspect_bytes(patched(crafted, footer_header + 56, "<Q", 2**64 - 1))


def test_overlapping_vhdx_items_are_refused(images: ImageFactory) -> None:
    data = _image(images, "vhdx")
    entry = crafting.vhdx_item_entry(data, vhdx.LOGICAL_SECTOR_SIZE)
    overlapping = patched(data, entry + 16, "<I", 65536 + 4)  # inside the file parameters
    with pytest.raises(InspectionError, match="placed before"):
        inspect_bytes(overlapping)


def test_empty_data_declared_structured(images: ImageFactory) -> None:
    detected = inspect_bytes(b"")
    assert (detected.format, detected.virtual_size) == ("raw", 0)
    for declared in ("qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"):
        with pytest.raises(InspectionError, match=r"not .* as its disk_format says"):
            check(declared, detected)
    assert inspect_file(images.create("raw", 0)).format == "raw"
