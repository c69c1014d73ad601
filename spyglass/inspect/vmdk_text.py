"""VMDK descriptor text: recognising a descriptor file, and reading createType, extents and parents.

A descriptor is recognised the way QEMU's probe does it (comment and blank lines, then a
`version=1|2|3` line, within the first 2 KiB), so text QEMU would open as a VMDK is never taken
for raw data. A descriptor file holds no disk data: it is always refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spyglass.inspect.model import Detected

PROBE_SIZE = 2048
_VERSION_LINES = tuple(f"version={v}{eol}".encode() for v in "123" for eol in ("\n", "\r\n"))
_EXTENT = re.compile(r'\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\S+)(?:\s+"([^"]*)")?')
_PARENT = re.compile(r'parentFileNameHint\s*=\s*"([^"]*)"')
_BLANK = re.compile(rb" *\r?\n")


@dataclass(frozen=True)
class Extent:
    access: str
    sectors: int
    type: str
    filename: str


def is_descriptor(start: bytes) -> bool:
    """True when QEMU would probe these first bytes as a VMDK descriptor file."""
    data = start[:PROBE_SIZE]
    position = 0
    while position < len(data):
        if data[position : position + 1] == b"#":
            position = _next_line(data, position)
        elif data[position : position + 1] == b" ":
            blank = _BLANK.match(data, position)
            if blank is None:
                return False
            position = blank.end()
        else:
            return data.startswith(_VERSION_LINES, position)
    return False


def _next_line(data: bytes, position: int) -> int:
    newline = data.find(b"\n", position)
    return len(data) if newline < 0 else newline + 1


def descriptor_file(start: bytes) -> Detected:
    names = [extent.filename for extent in extents(until_nul(start)) if extent.filename]
    listed = f" ({', '.join(repr(name) for name in names[:3])})" if names else ""
    hazard = (
        f"The data is a VMDK descriptor file: it holds no disk data and refers to other files{listed}. "
        "Upload a monolithicSparse or streamOptimized VMDK instead."
    )
    return Detected("vmdk", None, variant="descriptor", hazards=(hazard,))


def until_nul(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("latin-1")


def value(text: str, key: str) -> str | None:
    found = re.search(rf'^[ \t]*{re.escape(key)}[ \t]*=[ \t]*"([^"\n]*)"', text, re.MULTILINE)
    return found.group(1) if found else None


def extents(text: str) -> list[Extent]:
    found = []
    for line in text.splitlines():
        match = _EXTENT.match(line)
        if match:
            access, sectors, kind, filename = match.groups()
            found.append(Extent(access, int(sectors), kind, filename or ""))
    return found


def extent_hazards(listed: list[Extent]) -> list[str]:
    if len(listed) != 1:
        return [f"The VMDK descriptor lists {len(listed)} extents; only one embedded extent is accepted."]
    extent = listed[0]
    if extent.type != "SPARSE":
        return [f"The VMDK extent has type {extent.type}; only an embedded sparse extent is accepted."]
    if "/" in extent.filename or "\\" in extent.filename:
        return [f"The VMDK extent refers to another file ({extent.filename!r})."]
    return []


def parent_hazards(text: str) -> list[str]:
    if "parentFileNameHint" not in text:
        return []
    named = _PARENT.search(text)
    parent = f" ({named.group(1)!r})" if named else ""
    return [f"The VMDK image names a parent image{parent}; only self-contained images are accepted."]
