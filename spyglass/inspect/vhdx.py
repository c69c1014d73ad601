"""Microsoft VHDX: file identifier, region table, metadata table and the items the checks need.

Offsets and GUIDs follow the MS-VHDX specification (little-endian, GUIDs in Microsoft byte
order). The region table at 192 KiB locates the metadata region (always 1 MiB-aligned, after the
headers), whose table locates the virtual disk size, logical sector size and file parameters.
A disk with a parent (differencing) is a hazard; unknown required regions or items are refused
because QEMU refuses them too.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Generator
from dataclasses import dataclass

from spyglass.inspect.model import (
    Detected,
    End,
    InspectionError,
    Parser,
    Request,
    is_power_of_two,
    read,
    until_end,
)

SIGNATURE = b"vhdxfile"
KIB, MIB = 1024, 1024 * 1024
REGION_TABLE_OFFSET = 192 * KIB
TABLE_SIZE = 64 * KIB
MAX_ENTRIES = 2047
MAX_DISK_SIZE = 64 * 1024**4  # 64 TiB, the format's limit

_TABLE_HEADER = struct.Struct("<4sIII")
_REGION = struct.Struct("<16sQII")
_METADATA_HEADER = struct.Struct("<8sHH20x")
_ITEM = struct.Struct("<16sIII4x")
REQUIRED_REGION = 1
REQUIRED_ITEM = 1 << 2
HAS_PARENT = 1 << 1


def _guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


BAT_REGION = _guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION = _guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = _guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = _guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE_83_DATA = _guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE = _guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE = _guid("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = _guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
KNOWN_ITEMS = {FILE_PARAMETERS, VIRTUAL_DISK_SIZE, PAGE_83_DATA, LOGICAL_SECTOR_SIZE, PHYSICAL_SECTOR_SIZE}
# The items read, with their size and a name for messages.
WANTED_ITEMS = {
    FILE_PARAMETERS: (8, "file parameters"),
    VIRTUAL_DISK_SIZE: (8, "virtual disk size"),
    LOGICAL_SECTOR_SIZE: (4, "logical sector size"),
}


@dataclass(frozen=True)
class Region:
    offset: int
    length: int


@dataclass(frozen=True)
class Item:
    guid: bytes
    offset: int
    length: int


def parse(head: bytes) -> Parser:
    table = yield from read(REGION_TABLE_OFFSET, TABLE_SIZE, "VHDX region table")
    regions = read_regions(table)
    metadata = regions[METADATA_REGION]
    metadata_table = yield from read(metadata.offset, TABLE_SIZE, "VHDX metadata table")
    items, has_parent_locator = read_items(metadata_table)
    values = yield from read_values(metadata, items)
    size, has_parent = interpret(values)
    end = yield from until_end()
    for region in regions.values():
        if region.offset + region.length > end.size:
            raise InspectionError("The VHDX image is truncated: a region lies past the end of the data.")
    hazards = (_DIFFERENCING,) if has_parent or has_parent_locator else ()
    return Detected("vhdx", size, hazards=hazards)


def read_regions(table: bytes) -> dict[bytes, Region]:
    signature, _checksum, count, _reserved = _TABLE_HEADER.unpack_from(table)
    if signature != b"regi":
        raise InspectionError("The VHDX region table is missing (no 'regi' signature at 192 KiB).")
    if count > MAX_ENTRIES:
        raise InspectionError(f"The VHDX region table claims {count} entries; at most {MAX_ENTRIES} fit.")
    regions: dict[bytes, Region] = {}
    for index in range(count):
        guid, offset, length, flags = _REGION.unpack_from(table, _TABLE_HEADER.size + index * _REGION.size)
        if guid in (BAT_REGION, METADATA_REGION):
            regions[guid] = _checked_region(Region(offset, length))
        elif flags & REQUIRED_REGION:
            raise InspectionError("The VHDX image requires a region this check does not know.")
    if set(regions) != {BAT_REGION, METADATA_REGION}:
        raise InspectionError("The VHDX region table lacks its metadata or block allocation region.")
    return regions


def _checked_region(region: Region) -> Region:
    # Regions are 1 MiB-aligned and start after the headers and region tables (the first MiB).
    if region.offset < MIB or region.offset % MIB or region.length < TABLE_SIZE:
        raise InspectionError("The VHDX region table places a region at an invalid offset or length.")
    return region


def read_items(table: bytes) -> tuple[list[Item], bool]:
    signature, _reserved, count = _METADATA_HEADER.unpack_from(table)
    if signature != b"metadata":
        raise InspectionError("The VHDX metadata table has no 'metadata' signature.")
    if count > MAX_ENTRIES:
        raise InspectionError(f"The VHDX metadata table claims {count} entries; at most {MAX_ENTRIES} fit.")
    items, has_parent_locator = [], False
    for index in range(count):
        guid, offset, length, flags = _ITEM.unpack_from(table, _METADATA_HEADER.size + index * _ITEM.size)
        if guid == PARENT_LOCATOR:
            has_parent_locator = True
        elif guid in WANTED_ITEMS:
            items.append(Item(guid, offset, length))
        elif guid not in KNOWN_ITEMS and flags & REQUIRED_ITEM:
            raise InspectionError("The VHDX image requires a metadata item this check does not know.")
    return items, has_parent_locator


def read_values(metadata: Region, items: list[Item]) -> Generator[Request, bytes | End, dict[bytes, bytes]]:
    values: dict[bytes, bytes] = {}
    for item in sorted(items, key=lambda item: item.offset):
        size, name = WANTED_ITEMS[item.guid]
        if item.guid in values or item.length != size or not _inside(item, metadata):
            raise InspectionError(f"The VHDX {name} metadata item is misplaced or has the wrong size.")
        values[item.guid] = yield from read(metadata.offset + item.offset, size, f"VHDX {name}")
    return values


def _inside(item: Item, metadata: Region) -> bool:
    # Item data follows the 64 KiB table and stays within the metadata region.
    return item.offset >= TABLE_SIZE and item.offset + item.length <= metadata.length


def interpret(values: dict[bytes, bytes]) -> tuple[int, bool]:
    """The virtual disk size and whether the disk has a parent, from the items' values."""
    if set(values) != set(WANTED_ITEMS):
        raise InspectionError("The VHDX metadata lacks the virtual disk size or another required item.")
    (size,) = struct.unpack("<Q", values[VIRTUAL_DISK_SIZE])
    (sector,) = struct.unpack("<I", values[LOGICAL_SECTOR_SIZE])
    block_size, flags = struct.unpack("<II", values[FILE_PARAMETERS])
    if not is_power_of_two(block_size) or not MIB <= block_size <= 256 * MIB:
        raise InspectionError(f"The VHDX block size {block_size} is invalid.")
    if sector not in (512, 4096):
        raise InspectionError(f"The VHDX logical sector size {sector} is invalid.")
    if size > MAX_DISK_SIZE or size % sector:
        raise InspectionError(f"The VHDX virtual disk size {size} is invalid.")
    return size, bool(flags & HAS_PARENT)


_DIFFERENCING = (
    "The VHDX image is a differencing disk that refers to a parent image; "
    "only self-contained images are accepted."
)
