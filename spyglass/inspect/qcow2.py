"""QEMU's qcow2: header validity, virtual size, and what makes an image depend on other files.

Field offsets are those of QEMU's docs/interop/qcow2.txt (big-endian). A backing file, an
external data file or an incompatible feature bit this module does not know are hazards: QEMU
would read another file of the host, or data this check cannot vouch for. The old qcow (version 1)
format, which has backing files too, is refused.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass, replace

from spyglass.inspect.model import Detected, End, InspectionError, Parser, Request, read, until_end

MAGIC = b"QFI\xfb"

_V2 = struct.Struct(">4sIQIIQIIQQIIQ")  # the 72 bytes every version has
_V3 = struct.Struct(">QQQII")  # incompatible, compatible, autoclear features, refcount order, length
V3_MIN_LENGTH = _V2.size + _V3.size

DATA_FILE = 1 << 2
EXTENDED_L2 = 1 << 4
KNOWN_INCOMPATIBLE = 0b11111  # dirty, corrupt, external data file, compression type, extended L2
MIN_CLUSTER_BITS, MAX_CLUSTER_BITS = 9, 21
MAX_SIZE = 2**63 - 1
MAX_L1_BYTES = 32 * 1024 * 1024  # QEMU's limits on table sizes
MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024
MAX_BACKING_NAME = 1023


@dataclass(frozen=True)
class Header:
    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    incompatible: int = 0
    refcount_order: int = 4
    header_length: int = _V2.size

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits


def parse(head: bytes) -> Parser:
    header = read_header(head)
    validate(header)
    backing_name = yield from read_backing_name(header, head)
    hazards = hazards_of(header, backing_name)
    end = yield from until_end()
    check_tables_fit(header, end)
    return Detected("qcow2", header.size, variant=f"v{header.version}", hazards=hazards)


def read_header(head: bytes) -> Header:
    if len(head) < _V2.size:
        raise InspectionError("The qcow2 header is truncated.")
    fields = _V2.unpack_from(head)
    version = fields[1]
    if version == 1:
        raise InspectionError("qcow version 1 images are not accepted; convert the image to qcow2.")
    if version not in (2, 3):
        raise InspectionError(f"The qcow2 header has an unknown version ({version}).")
    if version == 2:
        return Header(*fields[1:11])
    if len(head) < V3_MIN_LENGTH:
        raise InspectionError("The qcow2 version 3 header is truncated.")
    incompatible, _compatible, _autoclear, refcount_order, length = _V3.unpack_from(head, _V2.size)
    return replace(
        Header(*fields[1:11]), incompatible=incompatible, refcount_order=refcount_order, header_length=length
    )


def validate(header: Header) -> None:
    problems = _problems(header)
    if problems:
        raise InspectionError(f"The qcow2 header is invalid: {'; '.join(problems)}.")


def _problems(header: Header) -> list[str]:
    if not MIN_CLUSTER_BITS <= header.cluster_bits <= MAX_CLUSTER_BITS:
        bounds = f"{MIN_CLUSTER_BITS}..{MAX_CLUSTER_BITS}"
        return [f"cluster_bits is {header.cluster_bits}, outside {bounds}"]
    problems = []
    if header.size > MAX_SIZE:
        problems.append(f"the virtual size {header.size} is 2**63 bytes or more")
    if header.crypt_method > 2:
        problems.append(f"unknown encryption method {header.crypt_method}")
    if header.version == 3 and not V3_MIN_LENGTH <= header.header_length <= header.cluster_size:
        problems.append(f"header length {header.header_length} is impossible")
    if header.refcount_order > 6:
        problems.append(f"refcount order {header.refcount_order} is above 6")
    return problems + _table_problems(header)


def _table_problems(header: Header) -> list[str]:
    problems = []
    cluster = header.cluster_size
    if header.l1_table_offset % cluster or header.refcount_table_offset % cluster:
        problems.append("a table offset is not cluster-aligned")
    if not 0 < header.refcount_table_clusters * cluster <= MAX_REFCOUNT_TABLE_BYTES:
        problems.append(f"{header.refcount_table_clusters} refcount table clusters is impossible")
    if header.l1_size * 8 > MAX_L1_BYTES:
        problems.append(f"the L1 table of {header.l1_size} entries is too large")
    elif header.l1_size < _l1_entries_needed(header):
        problems.append(f"the L1 table of {header.l1_size} entries cannot map {header.size} bytes")
    return problems


def _l1_entries_needed(header: Header) -> int:
    # Each L2 table fills one cluster with 8-byte entries (16-byte ones with extended L2).
    entry_bits = 4 if header.incompatible & EXTENDED_L2 else 3
    bytes_per_l1_entry = 1 << (2 * header.cluster_bits - entry_bits)
    return -(-header.size // bytes_per_l1_entry)


def read_backing_name(header: Header, head: bytes) -> Generator[Request, bytes | End, str]:
    """The backing file name, for the message; it lies within the first cluster (QEMU insists)."""
    start, length = header.backing_file_offset, min(header.backing_file_size, MAX_BACKING_NAME)
    if not start or not length:
        return ""
    if start < len(head):
        name = head[start : start + length]
    else:
        name = yield from read(start, length, "backing file name", partial=True)
    return name.decode("utf-8", "replace")


def hazards_of(header: Header, backing_name: str) -> tuple[str, ...]:
    hazards = []
    if header.backing_file_offset:
        name = f" ({backing_name!r})" if backing_name else ""
        hazards.append(f"The qcow2 image has a backing file{name}; only self-contained images are accepted.")
    if header.incompatible & DATA_FILE:
        hazards.append(
            "The qcow2 image keeps its data in an external data file; "
            "only self-contained images are accepted."
        )
    unknown = header.incompatible & ~KNOWN_INCOMPATIBLE
    if unknown:
        hazards.append(f"The qcow2 image uses unknown incompatible features (bits 0x{unknown:x}).")
    return tuple(hazards)


def check_tables_fit(header: Header, end: End) -> None:
    tables = (
        ("L1 table", header.l1_table_offset + header.l1_size * 8),
        (
            "refcount table",
            header.refcount_table_offset + header.refcount_table_clusters * header.cluster_size,
        ),
    )
    for name, table_end in tables:
        if table_end > end.size:
            raise InspectionError(f"The qcow2 image is truncated: its {name} lies past the end of the data.")
