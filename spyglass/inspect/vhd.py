"""Microsoft VHD (QEMU's "vpc"): the 512-byte big-endian footer, dynamic disks and fixed disks.

A dynamic disk starts with a copy of its footer ("conectix") that points at a dynamic disk header
("cxsparse") and its block allocation table. A fixed disk is raw data followed by the footer, so
the raw parser asks `fixed_disk` about the last sector. Differencing disks name a parent image and
are a hazard. The virtual size is read as QEMU reads it: from the CHS geometry for images made by
Virtual PC and QEMU (creator "vpc " and "qemu"), from the footer's current size for the others.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from spyglass.inspect.model import SECTOR, Detected, InspectionError, Parser, is_power_of_two, read, until_end

COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
FOOTER_SIZE = SECTOR
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
DISK_TYPES = {FIXED: "fixed", DYNAMIC: "dynamic", DIFFERENCING: "differencing"}

_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII")
_CHECKSUM_AT = 64
_DYNAMIC_HEADER = struct.Struct(">8sQQIII")
DYNAMIC_HEADER_SIZE = 1024
MAX_SECTORS = 0xFF000000  # QEMU's limit, about 2 TiB
MAX_GEOMETRY = 65535 * 16 * 255
CHS_CREATORS = (b"vpc ", b"qemu")


@dataclass(frozen=True)
class Footer:
    data_offset: int
    creator_app: bytes
    current_size: int
    geometry_sectors: int
    disk_type: int
    checksum_ok: bool

    @property
    def virtual_size(self) -> int:
        if self.creator_app in CHS_CREATORS and self.geometry_sectors != MAX_GEOMETRY:
            return self.geometry_sectors * SECTOR
        return self.current_size


def read_footer(data: bytes) -> Footer:
    if len(data) < FOOTER_SIZE:
        raise InspectionError("The VHD footer is truncated.")
    fields = _FOOTER.unpack_from(data)
    cylinders, heads, sectors_per_track = fields[10:13]
    return Footer(
        data_offset=fields[3],
        creator_app=fields[5],
        current_size=fields[9],
        geometry_sectors=cylinders * heads * sectors_per_track,
        disk_type=fields[13],
        checksum_ok=fields[14] == checksum(data[:FOOTER_SIZE]),
    )


def checksum(footer: bytes) -> int:
    """The footer's one's complement byte sum, its own checksum field counted as zero."""
    total = sum(footer) - sum(footer[_CHECKSUM_AT : _CHECKSUM_AT + 4])
    return ~total & 0xFFFFFFFF


def parse_dynamic(head: bytes) -> Parser:
    footer = read_footer(head)
    if footer.disk_type == DIFFERENCING:
        return Detected("vhd", footer.virtual_size, variant="differencing", hazards=(_DIFFERENCING,))
    _validate_dynamic(footer)
    dynamic = yield from read(footer.data_offset, DYNAMIC_HEADER_SIZE, "VHD dynamic disk header")
    table_end = _table_end(dynamic, footer.virtual_size)
    end = yield from until_end()
    if table_end > end.size:
        raise InspectionError("The VHD image is truncated: its block allocation table is incomplete.")
    return Detected("vhd", footer.virtual_size, variant="dynamic")


def _validate_dynamic(footer: Footer) -> None:
    if footer.disk_type != DYNAMIC:
        kind = DISK_TYPES.get(footer.disk_type, f"unknown type {footer.disk_type}")
        raise InspectionError(f"The VHD footer at the start of the data describes a {kind} disk.")
    if footer.virtual_size > MAX_SECTORS * SECTOR:
        raise InspectionError(f"The VHD virtual size {footer.virtual_size} is larger than 2 TiB.")
    if footer.data_offset < FOOTER_SIZE:
        raise InspectionError("The VHD footer points at its dynamic disk header inside itself.")


def _table_end(dynamic: bytes, virtual_size: int) -> int:
    cookie, _data, table_offset, _version, entries, block_size = _DYNAMIC_HEADER.unpack_from(dynamic)
    if cookie != DYNAMIC_COOKIE:
        raise InspectionError("The VHD dynamic disk header has no cxsparse signature.")
    if not is_power_of_two(block_size) or block_size < SECTOR:
        raise InspectionError(f"The VHD block size {block_size} is invalid.")
    if entries * block_size < virtual_size or entries > MAX_SECTORS * SECTOR // block_size:
        raise InspectionError(f"The VHD block allocation table of {entries} entries does not fit the disk.")
    return int(table_offset + 4 * entries)


def fixed_disk(size: int, tail: bytes) -> int | None:
    """The virtual size when the data ends with a valid fixed-disk footer, else None (plain raw)."""
    footer_bytes = tail[-FOOTER_SIZE:]
    if size < FOOTER_SIZE or not footer_bytes.startswith(COOKIE):
        return None
    footer = read_footer(footer_bytes)
    if footer.disk_type != FIXED or not footer.checksum_ok:
        return None
    if footer.virtual_size > size - FOOTER_SIZE:
        return None
    return footer.virtual_size


_DIFFERENCING = (
    "The VHD image is a differencing disk that refers to a parent image; "
    "only self-contained images are accepted."
)
