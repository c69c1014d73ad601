"""Images as files in one directory. Writes go to a temporary file renamed into place on commit.

A directory the store creates is 0700 and every file 0600 (spyglass.file_modes)."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spyglass.blobs.base import BlobNotFound, BlobStoreFull
from spyglass.file_modes import FILE_MODE, private_dir

READ_CHUNK = 1024 * 1024
FLUSH_EVERY = 64 * 1024 * 1024
# O_DIRECT wants addresses, offsets and lengths in multiples of the logical block size; a page is
# a multiple of every block size in common use.
DIRECT_ALIGN = 4096
STAGE_SIZE = 4 * 1024 * 1024
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

    With `direct` (the default) the file is opened with O_DIRECT where the filesystem allows it:
    each buffer goes from memory to the disk without a copy into the page cache. On a 2-core VM
    that copy and its write-back cost about 2 of the 7.5 CPU-seconds a GB of upload takes, away
    from the hashing that runs beside it. Buffers that are page-aligned
    and a whole number of pages long (those spyglass.ingest fills) are written as they are; other
    data is gathered in an aligned staging buffer first. The tail of the file, shorter than a page,
    is written through the page cache at commit. Where O_DIRECT is refused (tmpfs, some network
    filesystems) every write goes through the page cache.

    Either way a background thread syncs every FLUSH_EVERY bytes, so that the disk works while the
    next buffers are hashed, and commit only waits for the last stretch instead of stalling for
    seconds after the last byte of a large image.
    """

    def __init__(self, final: Path, direct: bool = True) -> None:
        self._final = final
        self._partial = final.with_name(final.name + PARTIAL_SUFFIX)
        self._fd, self._direct = _open_for_writing(self._partial, direct)
        self._closed = False
        self._stage = memoryview(mmap.mmap(-1, STAGE_SIZE)) if self._direct else None
        self._staged = 0
        self._unsynced = 0
        self._syncer: threading.Thread | None = None
        self._sync_error: OSError | None = None

    @property
    def direct(self) -> bool:
        """Whether writes currently go past the page cache."""
        return self._direct

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        with _full_is_full():
            if self._direct and (self._staged or len(view) % DIRECT_ALIGN or not _is_aligned(view)):
                self._write_staged(view)
            else:
                self._write(view)

    def _write_staged(self, view: memoryview) -> None:
        assert self._stage is not None
        while view and self._direct:
            taken = min(len(view), STAGE_SIZE - self._staged)
            self._stage[self._staged : self._staged + taken] = view[:taken]
            self._staged += taken
            view = view[taken:]
            if self._staged == STAGE_SIZE:
                self._staged = 0
                self._write(self._stage)
        if view:
            # Direct I/O was given up while the stage was written out: the rest goes through the cache.
            self._write(view)

    def _write(self, view: memoryview) -> None:
        self._unsynced += len(view)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self._direct:
                    raise
                # The filesystem wants a coarser alignment than a page: write through the cache.
                self._stop_direct()
                continue
            view = view[written:]
            if view and written % DIRECT_ALIGN:
                self._stop_direct()
        if self._unsynced >= FLUSH_EVERY and (self._syncer is None or not self._syncer.is_alive()):
            self._unsynced = 0
            self._syncer = threading.Thread(target=self._sync_in_background, daemon=True)
            self._syncer.start()

    def _stop_direct(self) -> None:
        if self._direct:
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            self._direct = False

    def _sync_in_background(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            # Kept for commit: after a failed sync the kernel may report the next one as fine.
            self._sync_error = exc

    def _wait_for_sync(self) -> None:
        if self._syncer is not None:
            self._syncer.join()

    def _write_out_stage(self) -> None:
        assert self._stage is not None
        staged, self._staged = self._stage[: self._staged], 0
        whole = len(staged) - len(staged) % DIRECT_ALIGN
        self._write(staged[:whole])
        if whole < len(staged):
            self._stop_direct()
            self._write(staged[whole:])

    def commit(self) -> None:
        with _full_is_full():
            if self._staged:
                self._write_out_stage()
            self._wait_for_sync()
            if self._sync_error is not None:
                raise self._sync_error
            # Durable before the image is declared active. O_DIRECT alone guarantees neither that
            # the disk's own cache was written nor that the file's new size was.
            os.fdatasync(self._fd)
        self._close()
        os.replace(self._partial, self._final)
        # The new name too, or a crash could leave an active image whose file was never named.
        _sync_directory(self._final.parent)

    def abort(self) -> None:
        self._wait_for_sync()
        self._close()
        self._partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)


def _open_for_writing(path: Path, direct: bool) -> tuple[int, bool]:
    """A new file's descriptor, and whether it is open for direct I/O."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    if direct and hasattr(os, "O_DIRECT"):
        try:
            return os.open(path, flags | os.O_DIRECT, FILE_MODE), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    return os.open(path, flags, FILE_MODE), False


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_aligned(view: memoryview) -> bool:
    if view.readonly:
        # bytes and other read-only buffers: ctypes cannot take their address, and the data of a
        # bytes object follows its header, never on a page boundary.
        return False
    return ctypes.addressof(ctypes.c_char.from_buffer(view)) % DIRECT_ALIGN == 0


class FilesystemStore:
    def __init__(self, root: Path, name: str = "fs", direct_io: bool = True) -> None:
        self.name = name
        self.root = root
        self.direct_io = direct_io
        private_dir(self.root)

    def _path(self, key: str) -> Path:
        if "/" in key or key.startswith(".") or not key:
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def writer(self, key: str) -> FilesystemWriter:
        return FilesystemWriter(self._path(key), self.direct_io)

    def link(self, source: FilesystemStore, source_key: str, key: str) -> bool:
        """Blob `source_key` of `source` becomes blob `key` here as a hard link, where both
        directories are on one filesystem that has hard links; False where they are not."""
        target = self._path(key)
        try:
            os.link(source._path(source_key), target)
        except FileNotFoundError as exc:
            raise BlobNotFound(source_key) from exc
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EEXIST):
                return False
            raise
        _sync_directory(self.root)
        return True

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
