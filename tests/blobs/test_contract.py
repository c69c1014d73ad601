"""One contract every blob store passes: the filesystem store and the in-memory test double."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spyglass.blobs import BlobNotFound, BlobStore, FilesystemStore, MemoryStore

StoreFactory = Callable[[Path], BlobStore]
FACTORIES: dict[str, StoreFactory] = {
    "filesystem": lambda tmp: FilesystemStore(tmp / "blobs"),
    "memory": lambda tmp: MemoryStore(),
}


@pytest.fixture(params=list(FACTORIES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return FACTORIES[request.param](tmp_path)


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
