"""The vocabulary every inspector shares: what a parser asks the stream for, what it reports, its error.

A format parser is a generator. It yields `Want(offset, length)` for each region of the image it
needs, in increasing offset order, and receives those bytes; it may yield `UNTIL_END` once to learn
the total size and the last bytes of the image; it returns a `Detected`. Written this way each
format reads top to bottom like its specification, while `FormatInspector` owns all the buffering.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from spyglass.errors import Invalid

SECTOR = 512
# How many bytes at the end of the image are kept for parsers: a VMDK footer is three sectors.
TAIL_SIZE = 3 * SECTOR


class InspectionError(Invalid):
    """The image data is refused; the message says why, in words meant for the uploader."""


@dataclass(frozen=True)
class Detected:
    """What the data really is.

    `hazards` are reasons to refuse the image whatever its declared disk_format (a backing file,
    an external data file, extents in other files); `check` turns them into an `InspectionError`.
    `size` is the number of bytes inspected.
    """

    format: str
    virtual_size: int | None
    partition_table: str | None = None
    variant: str | None = None
    hazards: tuple[str, ...] = ()
    size: int = 0


@dataclass(frozen=True)
class Want:
    """A region the parser needs. With `partial`, a short (or empty) read at the end is fine."""

    offset: int
    length: int
    what: str
    partial: bool = False


@dataclass(frozen=True)
class End:
    """Sent to a parser that yielded `UNTIL_END`: the image's size and its last bytes."""

    size: int
    tail: bytes


class UntilEnd:
    """Yielded by a parser that needs nothing more until the stream ends."""


UNTIL_END = UntilEnd()

Request = Want | UntilEnd
Parser = Generator[Request, "bytes | End", Detected]


def read(
    offset: int, length: int, what: str, partial: bool = False
) -> Generator[Request, bytes | End, bytes]:
    """Ask the stream for one region (use with `yield from`)."""
    data = yield Want(offset, length, what, partial)
    assert isinstance(data, bytes)
    return data


def until_end() -> Generator[Request, bytes | End, End]:
    """Wait for the end of the stream (use with `yield from`)."""
    end = yield UNTIL_END
    assert isinstance(end, End)
    return end


def done(detected: Detected) -> Parser:
    """A parser that needs nothing beyond the bytes it was given."""
    return detected
    yield UNTIL_END  # never reached; it makes this function a generator


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0
