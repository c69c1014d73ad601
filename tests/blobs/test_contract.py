"""One contract every blob store passes: filesystem, the in-memory test double, and Swift and S3
against a real Swift server (tests/blobs/conftest.py). The Swift store runs with tiny segments, so
the larger blobs here are Static Large Objects."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from spyglass.blobs import BlobNotFound, BlobStore, FilesystemStore, MemoryStore

StoreFactory = Callable[[pytest.FixtureRequest], BlobStore]
FACTORIES: dict[str, StoreFactory] = {
    "filesystem": lambda request: FilesystemStore(request.getfixturevalue("tmp_path") / "blobs"),
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


def test_filesystem_writer_syncs_in_the_background_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spyglass.blobs import filesystem

    synced: list[int] = []
    real_sync = filesystem.os.fdatasync
    monkeypatch.setattr(filesystem, "FLUSH_EVERY", 1000)
    monkeypatch.setattr(filesystem.os, "fdatasync", lambda fd: (synced.append(fd), real_sync(fd)))
    store = FilesystemStore(tmp_path / "blobs")
    writer = store.writer("big")
    for _ in range(10):
        writer.write(b"x" * 600)
    writer.commit()
    assert b"".join(store.read("big")) == b"x" * 6000
    assert len(synced) >= 2  # at least one sync while writing, and the final one


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
