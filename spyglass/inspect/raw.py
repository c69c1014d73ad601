"""Raw data, the fallback: its partition table, and the formats that are also valid raw data.

Data with no signature at its start is raw, unless it is VMDK descriptor text (a hazard), ends with
a fixed VHD footer, or holds an ISO 9660 primary volume descriptor. A raw disk's virtual size is its
length; its partition table is reported as "gpt" (protective MBR and a GPT header at LBA 1, for
512-byte or 4 KiB sectors) or "mbr" (a boot signature and plausible partition entries).
"""

from __future__ import annotations

from spyglass.inspect import iso, vhd, vmdk_text
from spyglass.inspect.model import SECTOR, Detected, Parser, read, until_end

BOOT_SIGNATURE = b"\x55\xaa"
GPT_SIGNATURE = b"EFI PART"
GPT_PROTECTIVE = 0xEE
_ENTRIES_AT, _ENTRY_SIZE = 446, 16
# The GPT header sits at LBA 1: byte 512 with 512-byte sectors, byte 4096 with 4 KiB ones.
GPT_HEADER_OFFSETS = (512, 4096)
START_SIZE = 4096 + SECTOR


def parse(head: bytes) -> Parser:
    more = yield from read(SECTOR, START_SIZE - SECTOR, "partition table", partial=True)
    start = head + more
    if vmdk_text.is_descriptor(start):
        return vmdk_text.descriptor_file(start)
    table = partition_table(start)
    volume_size = yield from iso.primary_volume_size()
    end = yield from until_end()
    fixed_size = vhd.fixed_disk(end.size, end.tail)
    if fixed_size is not None:
        return Detected("vhd", fixed_size, partition_table=table, variant="fixed")
    if volume_size is not None:
        return Detected("iso", volume_size, partition_table=table)
    return Detected("raw", end.size, partition_table=table)


def partition_table(start: bytes) -> str | None:
    if start[510:512] != BOOT_SIGNATURE:
        return None
    entries = [start[at : at + _ENTRY_SIZE] for at in range(_ENTRIES_AT, 510, _ENTRY_SIZE)]
    # Boot code would put anything in the status byte; a partition table only 0x00 or 0x80.
    if any(entry[0] not in (0x00, 0x80) for entry in entries):
        return None
    types = [entry[4] for entry in entries]
    if GPT_PROTECTIVE in types and any(start[at : at + 8] == GPT_SIGNATURE for at in GPT_HEADER_OFFSETS):
        return "gpt"
    return "mbr" if any(types) else None
