"""Small, valid disk images built in Python, for tests that need one without running qemu-img."""

from __future__ import annotations

import struct

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS


def qcow2(virtual_size: int, payload: bytes = b"") -> bytes:
    """An empty qcow2 (version 3) image of `virtual_size` bytes, laid out as qemu-img lays one out:
    header, refcount table, refcount block, L1 table, one cluster each; `payload` is appended after
    (data in clusters nothing points to, which changes neither the format nor the virtual size)."""
    l2_entries = CLUSTER // 8
    l1_size = -(-virtual_size // (CLUSTER * l2_entries))
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        b"QFI\xfb",
        3,  # version
        0,  # backing file offset
        0,  # backing file size
        CLUSTER_BITS,
        virtual_size,
        0,  # no encryption
        l1_size,
        3 * CLUSTER,  # L1 table
        1 * CLUSTER,  # refcount table
        1,  # refcount table clusters
        0,  # snapshots
        0,  # snapshots offset
        0,  # incompatible features
        0,  # compatible features
        0,  # autoclear features
        4,  # refcount order: 16-bit refcounts
        104,  # header length
    )
    refcount_table = struct.pack(">Q", 2 * CLUSTER)
    refcount_block = struct.pack(">4H", 1, 1, 1, 1)
    clusters = [header, refcount_table, refcount_block, bytes(8 * l1_size)]
    return b"".join(part.ljust(CLUSTER, b"\0") for part in clusters) + payload


def iso(blocks: int = 20) -> bytes:
    """An ISO 9660 image of `blocks` 2 KiB blocks: system area, primary volume descriptor, terminator."""
    block = 2048
    primary = bytearray(block)
    primary[0:7] = b"\x01CD001\x01"
    primary[80:88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    primary[128:132] = struct.pack("<H", block) + struct.pack(">H", block)
    terminator = b"\xffCD001\x01".ljust(block, b"\0")
    data = bytes(16 * block) + bytes(primary) + terminator
    return data.ljust(blocks * block, b"\0")
