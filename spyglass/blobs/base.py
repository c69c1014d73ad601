"""The narrow interface every blob store implements.

A store writes a blob through a writer (write chunks, then commit or abort), reads a byte range,
and deletes. Hashing, size limits and checksum verification live outside the drivers, in
spyglass.image_data, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class BlobNotFound(LookupError):
    pass


class BlobStoreFull(OSError):
    """The store has no room left for the blob being written (drivers translate their own errors)."""


class BlobWriter(Protocol):
    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self) -> None:
        """Make the blob durable and visible under its key."""

    def abort(self) -> None:
        """Discard everything written; safe to call more than once."""


class BlobStore(Protocol):
    name: str

    def writer(self, key: str) -> BlobWriter: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of the blob; raises BlobNotFound."""
        ...

    def size(self, key: str) -> int: ...

    def local_path(self, key: str) -> Path | None:
        """A file path the server may sendfile from, or None when the store is not local."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob; a missing blob is not an error."""

    def iter_keys(self) -> Iterator[str]: ...
