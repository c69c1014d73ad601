"""StoreSet.locate: the store and key of a location URL, the inverse of StoreSet.url."""

from __future__ import annotations

from pathlib import Path

import pytest

from spyglass.blobs.filesystem import FilesystemStore
from spyglass.blobs.memory import MemoryStore
from spyglass.blobs.registry import StoreSet


@pytest.fixture
def stores(tmp_path: Path) -> StoreSet:
    return StoreSet(
        {"fs": FilesystemStore(tmp_path / "images", name="fs"), "mem": MemoryStore(name="mem")}, "fs"
    )


@pytest.mark.parametrize("store", ["fs", "mem"])
def test_locate_inverts_url(stores: StoreSet, store: str) -> None:
    key = "0b7c9a56-6f1e-4d8a-b0c1-2d3e4f5a6b7c"
    assert stores.locate(stores.url(store, key)) == (store, key)


def test_a_filesystem_url_is_the_resolved_path(stores: StoreSet, tmp_path: Path) -> None:
    assert stores.locate((tmp_path / "images" / "k1").resolve().as_uri()) == ("fs", "k1")
    # The same directory written another way is not recognised: the URL form is the one GET shows.
    assert stores.locate(f"file://{tmp_path}/./images/k1") is None


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "{root}/../k1",
        "{root}/sub/k1",
        "{root}/.hidden",
        "{root}/",
        "{root}/k%2F1",
        "{root}/k\n1",
        "mem://",
        "mem://a/b",
        "rbd://fsid/pool/image/snap",
        "http://example.com/k1",
        "cinder://backend/volume",
        "",
    ],
)
def test_urls_outside_the_stores(stores: StoreSet, tmp_path: Path, url: str) -> None:
    root = (tmp_path / "images").resolve().as_uri()
    assert stores.locate(url.format(root=root)) is None
