"""ISO 9660: the primary volume descriptor, found in the descriptor set that starts at 32 KiB.

Each volume descriptor is a 2048-byte sector: a type byte, "CD001", a version. The primary one
(type 1) holds the volume space size (in logical blocks) and the logical block size, both stored
twice (little- then big-endian); their product is the virtual size. An ISO is also valid raw
data, so a malformed descriptor makes the data plain raw rather than an error.
"""

from __future__ import annotations

import struct
from collections.abc import Generator

from spyglass.inspect.model import End, Request, is_power_of_two, read

SECTOR = 2048
SYSTEM_AREA = 16 * SECTOR
STANDARD_ID = b"CD001"
PRIMARY, TERMINATOR = 1, 255
# Boot records and supplementary descriptors may come first; real images have a handful.
MAX_DESCRIPTORS = 16


def primary_volume_size() -> Generator[Request, bytes | End, int | None]:
    """The virtual size from the primary volume descriptor, or None when there is none."""
    for index in range(MAX_DESCRIPTORS):
        offset = SYSTEM_AREA + index * SECTOR
        descriptor = yield from read(offset, SECTOR, "ISO 9660 volume descriptor", partial=True)
        if len(descriptor) < SECTOR or descriptor[1:6] != STANDARD_ID:
            return None
        if descriptor[0] == PRIMARY:
            return volume_size(descriptor)
        if descriptor[0] == TERMINATOR:
            return None
    return None


def volume_size(descriptor: bytes) -> int | None:
    blocks = _both_endian(descriptor, 80, "I")
    block_size = _both_endian(descriptor, 128, "H")
    if blocks is None or block_size is None:
        return None
    if blocks == 0 or not is_power_of_two(block_size) or not 512 <= block_size <= SECTOR:
        return None
    return blocks * block_size


def _both_endian(descriptor: bytes, offset: int, kind: str) -> int | None:
    """A field stored little-endian then big-endian; None when the two copies disagree."""
    (little,) = struct.unpack_from("<" + kind, descriptor, offset)
    (big,) = struct.unpack_from(">" + kind, descriptor, offset + struct.calcsize(kind))
    return little if little == big else None
