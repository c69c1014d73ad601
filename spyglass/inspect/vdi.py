"""VirtualBox VDI: the little-endian header (version 1.1) and its disk size.

Recognised, as QEMU does, by the signature 0xbeda107f at offset 64 after the free-text banner.
The checks are QEMU's (it refuses anything else): aligned block map and data offsets, 512-byte
sectors, 1 MiB blocks, a block map large enough for the disk. A link or parent UUID, or the
differencing image type, means the image depends on another one: a hazard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from spyglass.inspect.model import SECTOR, Detected, InspectionError, Parser, until_end

SIGNATURE_OFFSET = 64
SIGNATURE = struct.pack("<I", 0xBEDA107F)
VERSION_1_1 = 0x00010001
DYNAMIC, STATIC, DIFFERENCING = 1, 2, 4
VARIANTS = {DYNAMIC: "dynamic", STATIC: "static"}
BLOCK_SIZE = 1024 * 1024
MAX_SIZE = 2**63 - 1

# From the signature: version, header size, type, flags, description, block map and data offsets,
# legacy geometry, sector size, disk size, block size and extra, block counts, four UUIDs.
_HEADER = struct.Struct("<4sIII4x256xII12xI4xQI4xII16x16x16s16s")


@dataclass(frozen=True)
class Header:
    version: int
    image_type: int
    offset_bmap: int
    offset_data: int
    sector_size: int
    disk_size: int
    block_size: int
    blocks_in_image: int
    blocks_allocated: int
    link_uuid: bytes
    parent_uuid: bytes


def parse(head: bytes) -> Parser:
    header = read_header(head)
    if header.image_type == DIFFERENCING or any(header.link_uuid + header.parent_uuid):
        return Detected("vdi", header.disk_size, variant="differencing", hazards=(_PARENT,))
    validate(header)
    end = yield from until_end()
    if header.offset_bmap + 4 * header.blocks_in_image > end.size:
        raise InspectionError("The VDI image is truncated: its block map is incomplete.")
    return Detected("vdi", header.disk_size, variant=VARIANTS[header.image_type])


def read_header(head: bytes) -> Header:
    if len(head) < SIGNATURE_OFFSET + _HEADER.size:
        raise InspectionError("The VDI header is truncated.")
    fields = _HEADER.unpack_from(head, SIGNATURE_OFFSET)
    version, _header_size, image_type = fields[1:4]
    return Header(version, image_type, *fields[4:])


def validate(header: Header) -> None:
    problem = _problem(header)
    if problem:
        raise InspectionError(f"The VDI header is invalid: {problem}.")


def _problem(header: Header) -> str | None:
    if header.version != VERSION_1_1:
        return f"version 0x{header.version:08x} is not 1.1"
    if header.image_type not in VARIANTS:
        return f"unknown image type {header.image_type}"
    if header.offset_bmap % SECTOR or header.offset_data % SECTOR:
        return "the block map or data offset is not sector-aligned"
    if header.sector_size != SECTOR:
        return f"sector size {header.sector_size} is not {SECTOR}"
    if header.block_size != BLOCK_SIZE:
        return f"block size {header.block_size} is not 1 MiB"
    if header.disk_size > min(MAX_SIZE, header.blocks_in_image * header.block_size):
        return f"disk size {header.disk_size} does not fit its {header.blocks_in_image} blocks"
    return None


_PARENT = (
    "The VDI image is a differencing image that refers to a parent; only self-contained images are accepted."
)
