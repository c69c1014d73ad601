"""Images as files in one directory. Writes go to a temporary file renamed into place on commit."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spyglass.blobs.base import BlobNotFound, BlobStoreFull

READ_CHUNK = 1024 * 1024
FLUSH_EVERY = 64 * 1024 * 1024
PARTIAL_SUFFIX = ".partial"


@contextmanager
def _full_is_full() -> Iterator[None]:
    """A full disk or an exhausted quota is BlobStoreFull; other OS errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise BlobStoreFull(exc.errno, exc.strerror) from exc
        raise


class FilesystemWriter:
    """Writes a blob; the bytes are durable (fdatasync) before commit returns.

    Syncing a multi-GiB file only at the end would stall the upload for seconds after the last
    byte arrives. So every FLUSH_EVERY bytes a background thread syncs what is written so far,
    overlapping the disk's write-back with the hashing of the next buffers; commit then only
    waits for the last stretch.
    """

    def __init__(self, final: Path) -> None:
        self._final = final
        self._partial = final.with_name(final.name + PARTIAL_SUFFIX)
        self._file = open(self._partial, "wb")  # noqa: SIM115 - closed in commit/abort
        self._fd = self._file.fileno()
        self._unsynced = 0
        self._syncer: threading.Thread | None = None
        self._sync_error: OSError | None = None

    def write(self, data: bytes | memoryview) -> None:
        with _full_is_full():
            self._file.write(data)
        self._unsynced += memoryview(data).nbytes
        if self._unsynced >= FLUSH_EVERY and (self._syncer is None or not self._syncer.is_alive()):
            self._unsynced = 0
            self._syncer = threading.Thread(target=self._sync_in_background, daemon=True)
            self._syncer.start()

    def _sync_in_background(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            # Kept for commit: after a failed sync the kernel may report the next one as fine.
            self._sync_error = exc

    def _wait_for_sync(self) -> None:
        if self._syncer is not None:
            self._syncer.join()

    def commit(self) -> None:
        self._wait_for_sync()
        with _full_is_full():
            if self._sync_error is not None:
                raise self._sync_error
            self._file.flush()
            # Durable before the image is declared active.
            os.fdatasync(self._fd)
        self._file.close()
        os.replace(self._partial, self._final)

    def abort(self) -> None:
        self._wait_for_sync()
        if not self._file.closed:
            self._file.close()
        self._partial.unlink(missing_ok=True)


class FilesystemStore:
    def __init__(self, root: Path, name: str = "fs") -> None:
        self.name = name
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith(".") or not key:
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def writer(self, key: str) -> FilesystemWriter:
        return FilesystemWriter(self._path(key))

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        return _read_range(handle, start, end)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        for entry in self.root.iterdir():
            yield entry.name


def _read_range(handle: object, start: int, end: int | None) -> Iterator[bytes]:
    import io

    assert isinstance(handle, io.BufferedReader)
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            data = handle.read(want)
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data
