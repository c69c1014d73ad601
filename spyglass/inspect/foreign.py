"""Formats QEMU can open but Spyglass does not inspect: recognised by their signature only.

Without this, a QED image (which can name a backing file) or a LUKS volume would pass for raw data
and could be declared `raw`. Parallels images are the `ploop` disk_format, which Glance accepts
uninspected; the others are refused outright.
"""

from __future__ import annotations

from collections.abc import Callable

from spyglass.inspect.model import Detected, Parser, done

PLOOP = "ploop"

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"QED\x00", "qed"),
    (b"LUKS\xba\xbe", "luks"),
    (b"WithoutFreeSpace", PLOOP),
    (b"WithouFreSpacExt", PLOOP),
    (b"Bochs Virtual HD Image", "bochs"),
    (b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0", "cloop"),
)


def parser(name: str) -> Callable[[bytes], Parser]:
    def parse(head: bytes) -> Parser:
        return done(detected(name))

    return parse


def detected(name: str) -> Detected:
    if name == PLOOP:
        return Detected(PLOOP, None)
    hazard = f"The data is a {name} image, a format Spyglass does not accept."
    return Detected(name, None, hazards=(hazard,))
