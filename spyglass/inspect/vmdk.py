"""VMware VMDK: single-file sparse images, and the descriptor files that must be refused.

A monolithicSparse or streamOptimized VMDK is one sparse extent with its descriptor embedded
after the 512-byte little-endian header ("KDMV"); its capacity, in sectors, is the virtual size.
streamOptimized images may keep the real header in a footer three sectors before the end.
Everything else refers to other files: a bare descriptor file lists extents elsewhere (other
files, devices), a sparse header with zero capacity makes QEMU treat the embedded descriptor as
such a file, and `parentFileNameHint` names a parent image. All of those are hazards.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from spyglass.inspect import vmdk_text
from spyglass.inspect.model import (
    SECTOR,
    Detected,
    End,
    InspectionError,
    Parser,
    is_power_of_two,
    read,
    until_end,
)

SPARSE_MAGIC = b"KDMV"
COWD_MAGIC = b"COWD"
SPARSE_TYPES = ("monolithicSparse", "streamOptimized")

_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
GD_AT_END = 2**64 - 1
MAX_GRAIN_SECTORS = 0x200000  # QEMU refuses bigger grains
MAX_GTES_PER_GT = 512
MAX_CAPACITY_SECTORS = (2**63 - 1) // SECTOR
# QEMU looks for parentFileNameHint in the 20 sectors after the header, wherever the descriptor is.
PARENT_SCAN = 20 * SECTOR
MAX_DESCRIPTOR_END = SECTOR + 1024 * 1024

_MARKER = struct.Struct("<QII")
MARKER_FOOTER, MARKER_END_OF_STREAM = 3, 0


@dataclass(frozen=True)
class Header:
    version: int
    flags: int
    capacity: int
    grain_size: int
    descriptor_offset: int
    descriptor_size: int
    gtes_per_gt: int
    gd_offset: int
    overhead: int


def parse_sparse(head: bytes) -> Parser:
    header = read_header(head)
    if header.capacity == 0 and header.descriptor_offset:
        return Detected("vmdk", None, variant="descriptor", hazards=(_DESCRIPTOR_AS_FILE,))
    validate(header)
    descriptor_end = _descriptor_end(header)
    window = yield from read(SECTOR, max(PARENT_SCAN, descriptor_end - SECTOR), "VMDK descriptor")
    descriptor = window[header.descriptor_offset * SECTOR - SECTOR : descriptor_end - SECTOR]
    create_type, hazards = embedded_descriptor(descriptor, window[:PARENT_SCAN])
    end = yield from until_end()
    if header.gd_offset == GD_AT_END:
        header = footer_header(end)
    if end.size < header.overhead * SECTOR:
        raise InspectionError("The VMDK image is truncated: it ends before its first grain.")
    return Detected("vmdk", header.capacity * SECTOR, variant=create_type, hazards=hazards)


def parse_cowd(head: bytes) -> Parser:
    raise InspectionError("VMDK images in the old COWD (VMFS sparse) format are not accepted.")
    yield from until_end()  # never reached; it makes this function a parser


def read_header(data: bytes, where: str = "header") -> Header:
    if len(data) < _HEADER.size:
        raise InspectionError(f"The VMDK {where} is truncated.")
    magic, *fields, _unclean_shutdown, _newline_checks, _compression = _HEADER.unpack_from(data)
    if magic != SPARSE_MAGIC:
        raise InspectionError(f"The VMDK {where} has no KDMV signature.")
    version, flags, capacity, grain, descriptor_offset, descriptor_size, gtes, _rgd, gd, overhead = fields
    return Header(version, flags, capacity, grain, descriptor_offset, descriptor_size, gtes, gd, overhead)


def validate(header: Header) -> None:
    problem = _layout_problem(header) or _descriptor_problem(header)
    if problem:
        raise InspectionError(f"The VMDK header is invalid: {problem}.")


def _layout_problem(header: Header) -> str | None:
    if not 1 <= header.version <= 3:
        return f"unknown version {header.version}"
    if not 0 < header.capacity <= MAX_CAPACITY_SECTORS:
        return f"capacity of {header.capacity} sectors is impossible"
    if not is_power_of_two(header.grain_size) or header.grain_size > MAX_GRAIN_SECTORS:
        return f"grain size of {header.grain_size} sectors is impossible"
    if not 0 < header.gtes_per_gt <= MAX_GTES_PER_GT:
        return f"{header.gtes_per_gt} entries per grain table is impossible"
    return None


def _descriptor_problem(header: Header) -> str | None:
    if header.descriptor_offset == 0:
        return "there is no embedded descriptor"
    if header.descriptor_size == 0:
        return "the embedded descriptor is empty"
    if _descriptor_end(header) > MAX_DESCRIPTOR_END:
        return "the embedded descriptor is not within the first MiB"
    return None


def _descriptor_end(header: Header) -> int:
    return (header.descriptor_offset + header.descriptor_size) * SECTOR


def footer_header(end: End) -> Header:
    """The header copy a streamOptimized image keeps before its end-of-stream marker."""
    tail = end.tail
    if len(tail) < 3 * SECTOR:
        raise InspectionError("The VMDK image is truncated: its footer is missing.")
    footer_marker = _MARKER.unpack_from(tail, 0)
    end_marker = _MARKER.unpack_from(tail, 2 * SECTOR)
    if footer_marker[1:] != (0, MARKER_FOOTER) or end_marker != (0, 0, MARKER_END_OF_STREAM):
        raise InspectionError("The VMDK footer is missing or invalid.")
    header = read_header(tail[SECTOR : 2 * SECTOR], "footer")
    if header.gd_offset == GD_AT_END:
        raise InspectionError("The VMDK footer does not locate the grain directory.")
    problem = _layout_problem(header)
    if problem:
        raise InspectionError(f"The VMDK footer is invalid: {problem}.")
    return header


def embedded_descriptor(descriptor: bytes, parent_scan: bytes) -> tuple[str, tuple[str, ...]]:
    """The createType of a sparse image's own descriptor, and the hazards it carries."""
    text = vmdk_text.until_nul(descriptor)
    create_type = vmdk_text.value(text, "createType")
    if create_type is None:
        raise InspectionError("The VMDK descriptor has no createType.")
    hazards = list(vmdk_text.parent_hazards(text + "\n" + vmdk_text.until_nul(parent_scan)))
    if create_type not in SPARSE_TYPES:
        hazards.append(
            f"The VMDK descriptor declares createType {create_type!r}, whose data lives in other "
            "files; only monolithicSparse and streamOptimized images are accepted."
        )
    hazards.extend(vmdk_text.extent_hazards(vmdk_text.extents(text)))
    return create_type, tuple(dict.fromkeys(hazards))


_DESCRIPTOR_AS_FILE = (
    "The VMDK image has a capacity of zero, so its embedded descriptor would be read as a "
    "descriptor file referring to other files; only self-contained images are accepted."
)
