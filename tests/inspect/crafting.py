"""Edits of real images for the hostile-image tests: locate structures, rewrite them in place."""

from __future__ import annotations

import struct

from spyglass.inspect import vhd, vhdx
from tests.inspect.helpers import patched

VMDK_DESCRIPTOR_AT = 512
VMDK_DESCRIPTOR_SIZE = 20 * 512


def vmdk_descriptor(data: bytes) -> str:
    area = data[VMDK_DESCRIPTOR_AT : VMDK_DESCRIPTOR_AT + VMDK_DESCRIPTOR_SIZE]
    return area.split(b"\0", 1)[0].decode()


def with_vmdk_descriptor(data: bytes, text: str) -> bytes:
    """A qemu-made sparse VMDK (descriptor at sector 1, 20 sectors) with another descriptor text."""
    area = text.encode().ljust(VMDK_DESCRIPTOR_SIZE, b"\0")
    assert len(area) == VMDK_DESCRIPTOR_SIZE
    return data[:VMDK_DESCRIPTOR_AT] + area + data[VMDK_DESCRIPTOR_AT + VMDK_DESCRIPTOR_SIZE :]


def with_vmdk_footer(data: bytes, capacity: int | None = None) -> bytes:
    """A streamOptimized VMDK moved to the "grain directory at end" layout, header in a footer."""
    header = data[:512]
    footer_header = header if capacity is None else patched(header, 12, "<Q", capacity)
    marker = struct.pack("<QII", 1, 0, 3).ljust(512, b"\0")
    end_of_stream = bytes(512)
    start = patched(header, 56, "<Q", 2**64 - 1)
    # qemu ends the stream with an end-of-stream marker; the footer goes just before it.
    return start + data[512:-512] + marker + footer_header + end_of_stream


def with_vhd_footer_field(data: bytes, offset: int, fmt: str, value: int | bytes, at: int = 0) -> bytes:
    """A VHD with one footer field changed (the footer copy at `at`) and its checksum recomputed."""
    footer = patched(data[at : at + 512], offset, fmt, value)
    footer = patched(footer, 64, ">I", vhd.checksum(footer))
    return data[:at] + footer + data[at + 512 :]


def vhdx_region_entry(data: bytes, guid: bytes) -> int:
    """The absolute offset of the region table entry for `guid`."""
    table = vhdx.REGION_TABLE_OFFSET
    (count,) = struct.unpack_from("<I", data, table + 8)
    for index in range(count):
        entry = table + 16 + 32 * index
        if data[entry : entry + 16] == guid:
            return entry
    raise AssertionError("region not found")


def vhdx_metadata_offset(data: bytes) -> int:
    (offset,) = struct.unpack_from("<Q", data, vhdx_region_entry(data, vhdx.METADATA_REGION) + 16)
    return int(offset)


def vhdx_item_entry(data: bytes, guid: bytes) -> int:
    """The absolute offset of the metadata table entry for `guid`."""
    metadata = vhdx_metadata_offset(data)
    (count,) = struct.unpack_from("<H", data, metadata + 10)
    for index in range(count):
        entry = metadata + 32 + 32 * index
        if data[entry : entry + 16] == guid:
            return entry
    raise AssertionError("metadata item not found")


def vhdx_item_value(data: bytes, guid: bytes) -> int:
    """The absolute offset of the value of metadata item `guid`."""
    (offset,) = struct.unpack_from("<I", data, vhdx_item_entry(data, guid) + 16)
    return vhdx_metadata_offset(data) + int(offset)
