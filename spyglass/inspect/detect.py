"""Which format is this? The signatures at the start of an image pick the parser.

The table follows QEMU's own probes, so that anything QEMU would open as a structured format is
seen as one here. Data without a known signature goes to the raw parser, which still looks for the
formats that are also valid raw data (ISO 9660, fixed VHD) and for VMDK descriptor text.
"""

from __future__ import annotations

from collections.abc import Callable

from spyglass.inspect import foreign, qcow2, raw, vdi, vhd, vhdx, vmdk
from spyglass.inspect.model import SECTOR, Parser, read

HEAD_SIZE = SECTOR

SIGNATURES: tuple[tuple[int, bytes, Callable[[bytes], Parser]], ...] = (
    (0, qcow2.MAGIC, qcow2.parse),
    (0, vmdk.SPARSE_MAGIC, vmdk.parse_sparse),
    (0, vmdk.COWD_MAGIC, vmdk.parse_cowd),
    (0, vhd.COOKIE, vhd.parse_dynamic),
    (0, vhdx.SIGNATURE, vhdx.parse),
    (vdi.SIGNATURE_OFFSET, vdi.SIGNATURE, vdi.parse),
    *((0, magic, foreign.parser(name)) for magic, name in foreign.SIGNATURES),
)


def inspect_image() -> Parser:
    """The whole inspection: read the first sector, then hand over to the matching parser."""
    head = yield from read(0, HEAD_SIZE, "first sector", partial=True)
    return (yield from choose(head)(head))


def choose(head: bytes) -> Callable[[bytes], Parser]:
    for offset, magic, parser in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return parser
    return raw.parse
