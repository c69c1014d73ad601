"""HTTP byte ranges for image downloads: which slice of the data a `Range` header asks for.

What is honoured is what image clients send: `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n
bytes). A header that cannot be read (another unit, bad syntax, `b < a`) is ignored and the whole
image is sent, as RFC 9110 allows. Several ranges in one header are not served as
multipart/byteranges: the first satisfiable one is sent as a single 206 part, its Content-Range
saying which bytes it holds. When no range is satisfiable (each starts at or beyond the end of the
data, or asks for the last 0 bytes) the answer is 416 with `Content-Range: bytes */size`.
`If-Range` is not evaluated: the data of an image never changes once it is active.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spyglass.errors import RangeNotSatisfiable

# At most 19 digits: larger numbers cannot address a byte of any image, and int() stays cheap.
_SPEC = re.compile(r"\s*(\d{0,19})\s*-\s*(\d{0,19})\s*")


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of the data."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"

    def header_value(self) -> str:
        """The same range as a `Range` request header."""
        return f"bytes={self.start}-{self.end - 1}"


def requested(header: str | None, size: int) -> ByteRange | None:
    """The part of `size` bytes to send; None means all of it. Raises RangeNotSatisfiable."""
    specs = _parse(header)
    if specs is None:
        return None
    for spec in specs:
        part = _resolve(spec, size)
        if part is not None:
            return part
    raise RangeNotSatisfiable(f"Requested range not satisfiable: the image has {size} bytes.", size)


def _parse(header: str | None) -> list[tuple[int | None, int | None]] | None:
    """The (first, last) pairs of a bytes Range header, or None when the header is to be ignored."""
    if header is None:
        return None
    unit, equals, text = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for item in text.split(","):
        match = _SPEC.fullmatch(item)
        if match is None or match.group(1) + match.group(2) == "":
            return None
        first = int(match.group(1)) if match.group(1) else None
        last = int(match.group(2)) if match.group(2) else None
        if first is not None and last is not None and last < first:
            return None
        specs.append((first, last))
    return specs


def _resolve(spec: tuple[int | None, int | None], size: int) -> ByteRange | None:
    """The bytes one spec selects from `size` bytes, or None when it selects none."""
    first, last = spec
    if first is None:
        suffix = last or 0
        return ByteRange(max(size - suffix, 0), size) if suffix and size else None
    if first >= size:
        return None
    end = size if last is None else min(last + 1, size)
    return ByteRange(first, end)
