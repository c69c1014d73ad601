"""One contract every blob store passes: filesystem, the in-memory test double, and Swift and S3
against a real Swift server (tests/blobs/conftest.py). The Swift store runs with tiny segments, so
the larger blobs here are Static Large Objects."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from spyglass.blobs import BlobNotFound, BlobStore, FilesystemStore, MemoryStore, copy_blob

StoreFactory = Callable[[pytest.FixtureRequest], BlobStore]
FACTORIES: dict[str, StoreFactory] = {
    "filesystem": lambda request: FilesystemStore(request.getfixturevalue("tmp_path") / "blobs"),
    "filesystem-buffered": lambda request: FilesystemStore(
        request.getfixturevalue("tmp_path") / "blobs", direct_io=False
    ),
    "memory": lambda request: MemoryStore(),
    "swift": lambda request: request.getfixturevalue("make_swift_store")(),
    "s3": lambda request: request.getfixturevalue("make_s3_store")(),
}


@pytest.fixture(params=list(FACTORIES))
def store(request: pytest.FixtureRequest) -> BlobStore:
    return FACTORIES[request.param](request)


def _put(store: BlobStore, key: str, chunks: list[bytes]) -> None:
    writer = store.writer(key)
    for chunk in chunks:
        writer.write(chunk)
    writer.commit()


def test_written_blob_reads_back_whole_and_in_ranges(store: BlobStore) -> None:
    data = bytes(range(256)) * 9000  # a little over 2 MiB, several read chunks
    _put(store, "k1", [data[:1000], memoryview(data)[1000:], b""])
    assert b"".join(store.read("k1")) == data
    assert store.size("k1") == len(data)
    assert b"".join(store.read("k1", 10, 20)) == data[10:20]
    assert b"".join(store.read("k1", len(data) - 5)) == data[-5:]
    assert b"".join(store.read("k1", 0, 0)) == b""


def test_nothing_is_visible_before_commit_and_abort_discards(store: BlobStore) -> None:
    writer = store.writer("k2")
    writer.write(b"partial")
    with pytest.raises(BlobNotFound):
        b"".join(store.read("k2"))
    writer.abort()
    writer.abort()
    with pytest.raises(BlobNotFound):
        store.size("k2")


def test_delete_is_idempotent_and_keys_list_committed_blobs(store: BlobStore) -> None:
    _put(store, "a", [b"1"])
    _put(store, "b", [b"2"])
    assert sorted(store.iter_keys()) == ["a", "b"]
    store.delete("a")
    store.delete("a")
    store.delete("never-existed")
    assert sorted(store.iter_keys()) == ["b"]
    with pytest.raises(BlobNotFound):
        b"".join(store.read("a"))


def test_empty_blob(store: BlobStore) -> None:
    _put(store, "empty", [])
    assert store.size("empty") == 0
    assert b"".join(store.read("empty")) == b""


def test_rewriting_a_key_replaces_the_blob(store: BlobStore) -> None:
    _put(store, "k", [b"old"])
    _put(store, "k", [b"new!"])
    assert b"".join(store.read("k")) == b"new!"


def test_a_range_reaching_past_the_end_stops_at_the_end(store: BlobStore) -> None:
    _put(store, "k", [b"0123456789"])
    assert b"".join(store.read("k", 5, 100)) == b"56789"
    assert b"".join(store.read("k", 10)) == b""
    assert b"".join(store.read("k", 50, 60)) == b""


def test_aborting_a_large_blob_midway_leaves_nothing(store: BlobStore) -> None:
    # Large enough to be several Swift segments and two S3 parts before the abort.
    chunk = bytes(range(256)) * 4096
    writer = store.writer("big")
    for _ in range(6):
        writer.write(memoryview(chunk))
    writer.abort()
    assert list(store.iter_keys()) == []
    with pytest.raises(BlobNotFound):
        store.size("big")


def test_abort_after_commit_keeps_the_blob(store: BlobStore) -> None:
    # A caller may abort a writer whose commit did finish (say, cancelled while awaiting it).
    data = bytes(range(256)) * 12000
    writer = store.writer("kept")
    writer.write(data)
    writer.commit()
    writer.abort()
    assert b"".join(store.read("kept")) == data


def test_concurrent_writers_and_readers(store: BlobStore) -> None:
    blobs = {f"c{i}": bytes([i]) * (600_000 + i) for i in range(4)}

    def write(key: str) -> None:
        writer = store.writer(key)
        data = memoryview(blobs[key])
        for offset in range(0, len(data), 65536):
            writer.write(data[offset : offset + 65536])
        writer.commit()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, blobs))
        read_back = dict(zip(blobs, pool.map(lambda key: b"".join(store.read(key)), blobs), strict=True))
    assert read_back == blobs


@pytest.mark.parametrize("direct_io", [True, False])
def test_filesystem_writer_syncs_in_the_background_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_io: bool
) -> None:
    from spyglass.blobs import filesystem

    synced: list[int] = []
    real_sync = filesystem.os.fdatasync
    monkeypatch.setattr(filesystem, "FLUSH_EVERY", 10_000)
    monkeypatch.setattr(filesystem, "STAGE_SIZE", 8192)
    monkeypatch.setattr(filesystem.os, "fdatasync", lambda fd: (synced.append(fd), real_sync(fd)))
    store = FilesystemStore(tmp_path / "blobs", direct_io=direct_io)
    writer = store.writer("big")
    for _ in range(10):
        writer.write(b"x" * 6000)
    writer.commit()
    assert b"".join(store.read("big")) == b"x" * 60_000
    assert len(synced) >= 2  # at least one sync while writing, and the final one


def _aligned(data: bytes) -> memoryview:
    """`data` in page-aligned memory, as spyglass.data.ingest hands it over."""
    buffer = mmap.mmap(-1, len(data))
    buffer[:] = data
    return memoryview(buffer)


def test_filesystem_writer_writes_past_the_page_cache_in_any_order_of_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spyglass.blobs import filesystem

    monkeypatch.setattr(filesystem, "STAGE_SIZE", 16384)
    pieces: list[bytes | memoryview] = [
        _aligned(bytes([1]) * 8192),  # aligned: written as it is
        b"\x02" * 1000,  # bytes: staged
        _aligned(bytes([3]) * 4096),  # aligned, but behind staged bytes: staged too
        bytes(range(256)) * 100,  # fills the stage past its size
        _aligned(bytes([4]) * 12288)[4096:],  # a page-aligned slice
        memoryview(b"\x05" * 5000)[7:],  # unaligned, read-only
    ]
    store = FilesystemStore(tmp_path / "blobs")
    writer = store.writer("mixed")
    assert isinstance(writer, filesystem.FilesystemWriter) and writer.direct
    for piece in pieces:
        writer.write(piece)
    writer.commit()
    assert b"".join(store.read("mixed")) == b"".join(bytes(piece) for piece in pieces)


def test_filesystem_writer_falls_back_to_the_page_cache_when_direct_io_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spyglass.blobs import filesystem

    real_write = filesystem.os.write

    def picky(fd: int, data: memoryview) -> int:
        # As a filesystem that wants a coarser alignment than a page does.
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(filesystem.os, "write", picky)
    store = FilesystemStore(tmp_path / "blobs")
    writer = store.writer("k")
    assert isinstance(writer, filesystem.FilesystemWriter) and writer.direct
    data = bytes(range(256)) * 32
    writer.write(_aligned(data))
    writer.write(b"tail")
    assert not writer.direct
    writer.commit()
    assert b"".join(store.read("k")) == data + b"tail"


def test_filesystem_writer_opens_without_direct_io_where_the_filesystem_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spyglass.blobs import filesystem

    real_open = filesystem.os.open

    def no_direct(path: Path, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(filesystem.os, "open", no_direct)
    store = FilesystemStore(tmp_path / "blobs")
    writer = store.writer("k")
    assert isinstance(writer, filesystem.FilesystemWriter) and not writer.direct
    writer.write(_aligned(bytes(8192)))
    writer.commit()
    assert store.size("k") == 8192


def test_filesystem_writer_reports_a_failed_background_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spyglass.blobs import filesystem

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(filesystem, "FLUSH_EVERY", 10)
    store = FilesystemStore(tmp_path / "blobs")
    writer = store.writer("bad")
    monkeypatch.setattr(filesystem.os, "fdatasync", failing)
    writer.write(b"y" * 20)
    with pytest.raises(OSError):
        writer.commit()
    writer.abort()
    with pytest.raises(BlobNotFound):
        store.size("bad")


def test_copy_between_directories_of_one_filesystem_is_a_hard_link(tmp_path: Path) -> None:
    staging, images = FilesystemStore(tmp_path / "staging"), FilesystemStore(tmp_path / "images")
    _put(staging, "staged", [b"image data"])
    copy_blob(staging, "staged", images, "kept")
    assert os.stat(staging.root / "staged").st_ino == os.stat(images.root / "kept").st_ino
    staging.delete("staged")
    assert b"".join(images.read("kept")) == b"image data"


def test_copy_streams_where_no_hard_link_can_be_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spyglass.blobs import filesystem

    def across_devices(_source: Path, _target: Path) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(filesystem.os, "link", across_devices)
    source, target = FilesystemStore(tmp_path / "a"), FilesystemStore(tmp_path / "b")
    data = bytes(range(256)) * 5000
    _put(source, "k", [data])
    copy_blob(source, "k", target, "k2")
    assert os.stat(source.root / "k").st_ino != os.stat(target.root / "k2").st_ino
    assert b"".join(target.read("k2")) == data


@pytest.mark.parametrize("source_kind", ["filesystem", "memory"])
def test_copying_a_missing_blob_raises_and_leaves_nothing(tmp_path: Path, source_kind: str) -> None:
    source = FilesystemStore(tmp_path / "a") if source_kind == "filesystem" else MemoryStore()
    target = FilesystemStore(tmp_path / "b")
    with pytest.raises(BlobNotFound):
        copy_blob(source, "missing", target, "k")
    assert list(target.iter_keys()) == []


def test_copy_from_another_kind_of_store_streams(tmp_path: Path) -> None:
    source, target = MemoryStore(), FilesystemStore(tmp_path / "b")
    _put(source, "k", [b"abc", b"def"])
    copy_blob(source, "k", target, "k")
    assert b"".join(target.read("k")) == b"abcdef"
