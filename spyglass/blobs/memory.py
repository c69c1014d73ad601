"""An in-memory blob store: the test double that ships with the package."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from spyglass.blobs.base import BlobNotFound


class MemoryWriter:
    def __init__(self, store: MemoryStore, key: str) -> None:
        self._store = store
        self._key = key
        self._parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self._parts.append(bytes(data))

    def commit(self) -> None:
        with self._store.lock:
            self._store.blobs[self._key] = b"".join(self._parts)
        self._parts = []

    def abort(self) -> None:
        self._parts = []


class MemoryStore:
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.blobs: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def writer(self, key: str) -> MemoryWriter:
        return MemoryWriter(self, key)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            data = self.blobs[key]
        except KeyError as exc:
            raise BlobNotFound(key) from exc
        return iter([data[start:end]])

    def size(self, key: str) -> int:
        try:
            return len(self.blobs[key])
        except KeyError as exc:
            raise BlobNotFound(key) from exc

    def local_path(self, key: str) -> Path | None:
        return None

    def delete(self, key: str) -> None:
        with self.lock:
            self.blobs.pop(key, None)

    def iter_keys(self) -> Iterator[str]:
        yield from list(self.blobs)
