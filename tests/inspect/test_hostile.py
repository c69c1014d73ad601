"""Hostile images: dependencies on other files, and data that is not what its disk_format says.

Each must be refused by `check` with a message naming the problem, whatever the chunking.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from spyglass.inspect import Detected, InspectionError, check, vhdx
from tests.inspect import crafting
from tests.inspect.helpers import MIB, ImageFactory, inspect_bytes, inspect_file, patched

EVERY_DECLARATION = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ami", "ploop", None)


def assert_refused(detected: Detected, pattern: str, declarations: tuple[str | None, ...]) -> None:
    for declared in declarations:
        with pytest.raises(InspectionError, match=pattern):
            check(declared, detected)


def test_qcow2_with_backing_file(images: ImageFactory) -> None:
    base = images.create("raw", MIB)
    top = images.create("qcow2", MIB, backing=("-b", str(base), "-F", "raw"))
    assert_refused(inspect_file(top), f"backing file \\('{re.escape(str(base))}'\\)", EVERY_DECLARATION)


def test_qcow2_v2_with_backing_file(images: ImageFactory) -> None:
    base = images.create("raw", MIB)
    top = images.create("qcow2", MIB, "compat=0.10", backing=("-b", str(base), "-F", "raw"))
    assert_refused(inspect_file(top), "has a backing file", EVERY_DECLARATION)


def test_qcow2_with_external_data_file(images: ImageFactory) -> None:
    data_file = images.directory / "external-data.raw"
    image = images.create("qcow2", MIB, f"data_file={data_file}")
    assert_refused(inspect_file(image), "external data file", EVERY_DECLARATION)


def test_qcow2_with_unknown_incompatible_feature(images: ImageFactory) -> None:
    data = images.create("qcow2", MIB).read_bytes()
    detected = inspect_bytes(patched(data, 72, ">Q", 1 << 40))
    assert_refused(detected, "unknown incompatible features \\(bits 0x10000000000\\)", ("qcow2",))


def _descriptor_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "disk.vmdk"
    path.write_text(body)
    return path


FLAT_DESCRIPTOR = """# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 2048 FLAT "{target}" 0
"""


def test_vmdk_descriptor_file_with_external_extent(images: ImageFactory, tmp_path: Path) -> None:
    target = tmp_path / "host-secret.raw"
    target.write_bytes(b"secret" * 200_000)
    path = _descriptor_file(tmp_path, FLAT_DESCRIPTOR.format(target=target))
    # QEMU really would open it as a VMDK and read the other file.
    assert images.info(path)["format"] == "vmdk"
    detected = inspect_file(path)
    assert (detected.format, detected.variant) == ("vmdk", "descriptor")
    assert_refused(detected, f"VMDK descriptor file.*{re.escape(str(target))}", EVERY_DECLARATION)


@pytest.mark.parametrize(
    "body",
    [
        'version=1\ncreateType="vmfs"\nRW 2048 VMFS "/dev/sda"\n',
        '# no header comment\n   \nversion=2\r\nRW 2048 FLAT "/etc/shadow" 0\r\n',
        "#\n#\nversion=3\n",
    ],
    ids=["device", "crlf-and-blank-lines", "no-extents"],
)
def test_vmdk_descriptor_variants_qemu_would_probe(tmp_path: Path, body: str) -> None:
    detected = inspect_bytes(body.encode(), cuts=range(1, len(body), 3))
    assert_refused(detected, "VMDK descriptor file", ("vmdk", "raw"))


def test_text_that_qemu_would_not_probe_is_raw() -> None:
    for body in (b"hello\nversion=1\n", b"\nversion=1\n", b"version=4\n", b"  x\nversion=1\n"):
        assert inspect_bytes(body).format == "raw"


@pytest.mark.parametrize("subformat", ["monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"])
def test_qemu_made_multi_file_vmdk_descriptors(images: ImageFactory, subformat: str) -> None:
    descriptor = images.create("vmdk", MIB, f"subformat={subformat}")
    assert_refused(inspect_file(descriptor), "VMDK descriptor file", ("vmdk", "raw", None))


def test_vmdk_with_parent_image(images: ImageFactory) -> None:
    base = images.create("vmdk", MIB)
    child = images.create("vmdk", MIB, backing=("-b", str(base), "-F", "vmdk"))
    assert_refused(
        inspect_file(child), f"names a parent image \\('{re.escape(str(base))}'\\)", EVERY_DECLARATION
    )


def _sparse_vmdk(images: ImageFactory) -> bytes:
    return images.create("vmdk", MIB).read_bytes()


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ('SPARSE "', 'SPARSE "/etc/', "refers to another file \\('/etc/"),
        ('SPARSE "', 'SPARSE "..\\\\', "refers to another file"),
        ("SPARSE", 'FLAT "/dev/sda" 0\n#', "extent has type FLAT"),
        ("monolithicSparse", "monolithicFlat", "createType 'monolithicFlat'"),
        ("# Extent description\n", '# Extent description\nRW 8 FLAT "x" 0\n', "lists 2 extents"),
        ("CID=", 'parentFileNameHint="/var/lib/base.vmdk"\nCID=', "names a parent image"),
    ],
    ids=["absolute-path", "parent-directory", "flat-extent", "create-type", "two-extents", "parent-hint"],
)
def test_vmdk_embedded_descriptor_hazards(images: ImageFactory, old: str, new: str, pattern: str) -> None:
    data = _sparse_vmdk(images)
    text = crafting.vmdk_descriptor(data)
    assert old in text
    detected = inspect_bytes(crafting.with_vmdk_descriptor(data, text.replace(old, new, 1)), cuts=[600, 700])
    assert_refused(detected, pattern, ("vmdk", "raw"))


def test_vmdk_parent_hint_outside_descriptor_but_where_qemu_looks(images: ImageFactory) -> None:
    data = _sparse_vmdk(images)
    text = crafting.vmdk_descriptor(data)
    # A descriptor cut short: QEMU still scans the 20 sectors after the header for the parent hint.
    short = patched(data, 36, "<Q", 1)
    hidden = crafting.with_vmdk_descriptor(short, text.ljust(600) + 'parentFileNameHint="base.vmdk"\n')
    assert_refused(inspect_bytes(hidden), "names a parent image", ("vmdk",))


def test_vmdk_with_zero_capacity_is_a_descriptor_file(images: ImageFactory) -> None:
    detected = inspect_bytes(patched(_sparse_vmdk(images), 12, "<Q", 0))
    assert_refused(detected, "capacity of zero", ("vmdk", "raw"))


def test_vhd_differencing_disk(images: ImageFactory) -> None:
    data = images.create("vpc", MIB).read_bytes()
    detected = inspect_bytes(crafting.with_vhd_footer_field(data, 60, ">I", 4))
    assert_refused(detected, "VHD image is a differencing disk", ("vhd", "raw"))


def test_vhdx_with_parent(images: ImageFactory) -> None:
    data = images.create("vhdx", MIB).read_bytes()
    flags_at = crafting.vhdx_item_value(data, vhdx.FILE_PARAMETERS) + 4
    assert_refused(inspect_bytes(patched(data, flags_at, "<I", 2)), "VHDX image is a differencing", ("vhdx",))


def test_vhdx_with_parent_locator(images: ImageFactory) -> None:
    data = images.create("vhdx", MIB).read_bytes()
    entry = crafting.vhdx_item_entry(data, vhdx.PAGE_83_DATA)
    detected = inspect_bytes(patched(data, entry, "16s", vhdx.PARENT_LOCATOR))
    assert_refused(detected, "VHDX image is a differencing", ("vhdx",))


@pytest.mark.parametrize("offset", [424, 440], ids=["link-uuid", "parent-uuid"])
def test_vdi_with_parent(images: ImageFactory, offset: int) -> None:
    data = images.create("vdi", MIB).read_bytes()
    assert_refused(
        inspect_bytes(patched(data, offset, "16s", b"\x11" * 16)), "VDI image is a differencing", ("vdi",)
    )


STRUCTURED = {
    "qcow2": ("qcow2", ()),
    "vmdk": ("vmdk", ()),
    "vhd": ("vpc", ()),
    "vhdx": ("vhdx", ()),
    "vdi": ("vdi", ()),
}


@pytest.mark.parametrize("data_format", STRUCTURED)
def test_structured_data_declared_raw(images: ImageFactory, data_format: str) -> None:
    qemu_format, options = STRUCTURED[data_format]
    detected = inspect_file(images.create(qemu_format, MIB, *options))
    pattern = f"The image data is a {data_format} .*image, but its disk_format is raw"
    assert_refused(detected, pattern, ("raw",))


@pytest.mark.parametrize("declared", [*STRUCTURED, "iso"])
def test_raw_data_declared_structured(images: ImageFactory, declared: str) -> None:
    detected = inspect_file(images.data(3 * MIB))
    assert_refused(
        detected, f"The image data is not {declared} as its disk_format says: it has no|neither", (declared,)
    )


@pytest.mark.parametrize("declared", STRUCTURED)
@pytest.mark.parametrize("data_format", STRUCTURED)
def test_one_structured_format_declared_as_another(
    images: ImageFactory, declared: str, data_format: str
) -> None:
    if declared == data_format:
        return
    qemu_format, options = STRUCTURED[data_format]
    detected = inspect_file(images.create(qemu_format, MIB, *options))
    assert_refused(detected, f"not {declared} as its disk_format says.*it is an? {data_format}", (declared,))


def test_qcow_version_1_is_refused(images: ImageFactory) -> None:
    with pytest.raises(InspectionError, match="qcow version 1"):
        inspect_file(images.create("qcow", MIB))


def test_qed_is_refused(images: ImageFactory) -> None:
    detected = inspect_file(images.create("qed", MIB))
    assert_refused(detected, "a qed image, a format Spyglass does not accept", EVERY_DECLARATION)


def test_luks_is_refused() -> None:
    # A LUKS1 header's start (qemu-img's own key setup is too slow and flaky for a unit test).
    header = b"LUKS\xba\xbe\x00\x01aes".ljust(4096, b"\0")
    assert_refused(
        inspect_bytes(header), "a luks image, a format Spyglass does not accept", EVERY_DECLARATION
    )


def test_parallels_is_ploop(images: ImageFactory) -> None:
    detected = inspect_file(images.create("parallels", MIB))
    assert (detected.format, detected.virtual_size) == ("ploop", None)
    check("ploop", detected)
    assert_refused(detected, "is a ploop image, but its disk_format is raw", ("raw",))


def test_qemu_made_fixed_vhd_is_valid_raw(images: ImageFactory) -> None:
    detected = inspect_file(images.create("vpc", MIB, "subformat=fixed"))
    check("raw", detected)
    check("vhd", detected)


def test_fixed_vhd_footer_with_bad_checksum_is_raw(images: ImageFactory) -> None:
    data = bytearray(images.create("vpc", MIB, "subformat=fixed").read_bytes())
    data[-1] ^= 0xFF
    detected = inspect_bytes(bytes(data))
    assert detected.format == "raw"
    assert_refused(detected, "neither a dynamic VHD header", ("vhd",))


def test_uninspectable_formats_accept_plain_structured_data(images: ImageFactory) -> None:
    detected = inspect_file(images.create("qcow2", MIB))
    for declared in ("ami", "ari", "aki", "ploop"):
        check(declared, detected)


def test_gpt_disk_is_raw_with_partition_table() -> None:
    mbr = bytearray(4608)
    mbr[446 + 4] = 0xEE
    mbr[510:512] = b"\x55\xaa"
    mbr[512:520] = b"EFI PART"
    detected = inspect_bytes(bytes(mbr) + bytes(MIB))
    assert (detected.format, detected.partition_table) == ("raw", "gpt")
    check("raw", detected)
    mbr[446 + 4] = 0x83
    assert inspect_bytes(bytes(mbr)).partition_table == "mbr"
    mbr[446] = 0x12  # not a partition status byte: boot code, not a table
    assert inspect_bytes(bytes(mbr)).partition_table is None
    assert struct.unpack_from("<H", mbr, 510) == (0xAA55,)
