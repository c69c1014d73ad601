"""The Swift store against a real Swift: segments and manifests, cleanup, bounded memory, errors."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tracemalloc
from collections.abc import Callable

import pytest
import requests

from spyglass.blobs import BlobNotFound, BlobStoreFull, swift
from spyglass.blobs.swift import SwiftConfig, SwiftStore
from tests.blobs.conftest import KiB, MiB, Saio
from tests.blobs.fake_keystone import fake_keystone

MakeStore = Callable[..., SwiftStore]
SEGMENT = 256 * KiB  # make_swift_store's default; buffer_size 64 KiB


def _put(store: SwiftStore, key: str, data: bytes, chunk: int = 50_000) -> None:
    writer = store.writer(key)
    for offset in range(0, len(data), chunk):
        writer.write(memoryview(data)[offset : offset + chunk])
    writer.commit()


def _segments(saio: Saio, store: SwiftStore) -> list[str]:
    _, listing = saio.admin().get_container(store.config.segments)
    return [entry["name"] for entry in listing]


def _read(store: SwiftStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read(key, start, end))


def test_a_blob_larger_than_a_segment_is_a_static_large_object(
    make_swift_store: MakeStore, saio: Saio
) -> None:
    store = make_swift_store()
    data = os.urandom(3 * SEGMENT + 12_345)
    _put(store, "big", data)

    headers, manifest = saio.admin().get_object(
        store.config.container, "big", query_string="multipart-manifest=get"
    )
    assert headers["x-static-large-object"] == "True"
    assert [entry["bytes"] for entry in json.loads(manifest)] == [SEGMENT] * 3 + [12_345]
    assert len(_segments(saio, store)) == 4
    assert store.size("big") == len(data)
    assert _read(store, "big") == data
    for start, end in [
        (SEGMENT - 1, SEGMENT + 1),  # across one boundary
        (SEGMENT - 10, 3 * SEGMENT + 10),  # across three
        (2 * SEGMENT, 3 * SEGMENT),  # exactly one segment
        (3 * SEGMENT + 5, None),  # the tail
        (0, 1),
    ]:
        assert _read(store, "big", start, end) == data[start:end], (start, end)
    assert _read(store, "big", len(data) + 10) == b""


def test_a_small_blob_is_one_plain_object(make_swift_store: MakeStore, saio: Saio) -> None:
    store = make_swift_store()
    data = os.urandom(64 * KiB)  # exactly the buffer
    _put(store, "small", data)
    headers = saio.admin().head_object(store.config.container, "small")
    assert "x-static-large-object" not in headers
    assert headers["etag"] == hashlib.md5(data).hexdigest()
    assert _segments(saio, store) == []
    assert _read(store, "small", 100, 200) == data[100:200]


def test_a_blob_between_buffer_and_segment_size_is_a_one_segment_manifest(
    make_swift_store: MakeStore, saio: Saio
) -> None:
    store = make_swift_store()
    data = os.urandom(100 * KiB)
    _put(store, "mid", data)
    assert saio.admin().head_object(store.config.container, "mid")["x-static-large-object"] == "True"
    assert len(_segments(saio, store)) == 1
    assert _read(store, "mid") == data


def test_abort_leaves_no_segment_behind(make_swift_store: MakeStore, saio: Saio) -> None:
    store = make_swift_store()
    writer = store.writer("doomed")
    writer.write(os.urandom(2 * SEGMENT + 1000))  # two whole segments and one in flight
    assert len(_segments(saio, store)) == 2
    writer.abort()
    writer.abort()
    assert _segments(saio, store) == []
    with pytest.raises(BlobNotFound):
        store.size("doomed")
    # The connection that carried the broken-off segment is usable again.
    _put(store, "after", b"fine")
    assert _read(store, "after") == b"fine"


def test_delete_removes_the_manifest_and_its_segments(make_swift_store: MakeStore, saio: Saio) -> None:
    store = make_swift_store()
    _put(store, "big", os.urandom(2 * SEGMENT + 1))
    _put(store, "keep", os.urandom(2 * SEGMENT + 1))
    store.delete("big")
    assert list(store.iter_keys()) == ["keep"]
    assert all(name.startswith("keep/") for name in _segments(saio, store))
    assert len(_segments(saio, store)) == 3


def test_rewriting_a_large_blob_deletes_the_old_segments(make_swift_store: MakeStore, saio: Saio) -> None:
    store = make_swift_store()
    _put(store, "k", os.urandom(3 * SEGMENT))
    replacement = os.urandom(SEGMENT + 1)
    _put(store, "k", replacement)
    assert len(_segments(saio, store)) == 2
    assert _read(store, "k") == replacement
    _put(store, "k", b"tiny")
    assert _segments(saio, store) == []


def test_listing_pages_through_the_container(
    make_swift_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swift, "LISTING_LIMIT", 2)
    store = make_swift_store()
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        _put(store, key, b"")
    assert sorted(store.iter_keys()) == keys


def test_streaming_holds_a_few_chunks_not_a_segment(make_swift_store: MakeStore) -> None:
    store = make_swift_store(segment_size=16 * MiB, buffer_size=MiB)
    chunk = os.urandom(MiB)
    writer = store.writer("streamed")
    tracemalloc.start()
    try:
        for _ in range(40):
            writer.write(chunk)
        writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, peak
    assert store.size("streamed") == 40 * MiB


def test_missing_blobs_are_blob_not_found(make_swift_store: MakeStore) -> None:
    store = make_swift_store()
    with pytest.raises(BlobNotFound):
        store.read("nope")
    with pytest.raises(BlobNotFound):
        store.read("nope", 3, 3)
    with pytest.raises(BlobNotFound):
        store.size("nope")
    assert list(store.iter_keys()) == []  # the container does not exist yet


def test_an_exceeded_container_quota_is_blob_store_full(make_swift_store: MakeStore, saio: Saio) -> None:
    store = make_swift_store()
    _put(store, "first", b"x")  # creates the containers
    conn = saio.admin()
    conn.post_container(store.config.container, {"X-Container-Meta-Quota-Bytes": "1000"})
    # Swift checks a chunked PUT only against the count quota (its length is unknown).
    conn.post_container(store.config.segments, {"X-Container-Meta-Quota-Count": "0"})

    with pytest.raises(BlobStoreFull) as plain:
        _put(store, "plain", os.urandom(5000))  # one object PUT at commit
    assert plain.value.errno == errno.ENOSPC
    writer = store.writer("large")
    with pytest.raises(BlobStoreFull):
        for _ in range(10):  # a streamed segment PUT refused on the way
            writer.write(os.urandom(SEGMENT))
    writer.abort()
    assert _segments(saio, store) == []
    assert sorted(store.iter_keys()) == ["first"]


def test_refusals_and_transport_errors_are_os_errors(make_swift_store: MakeStore, saio: Saio) -> None:
    store = make_swift_store()
    _put(store, "k", b"data")
    env = saio.env
    limited = SwiftStore(
        SwiftConfig(
            container=store.config.container,
            auth_url=env["ST_AUTH"],
            user=env["ST_LIMITED_USER"],
            key=env["ST_LIMITED_KEY"],
            retries=0,
        )
    )
    with pytest.raises(OSError, match="403") as denied:
        limited.read("k")
    assert not isinstance(denied.value, BlobStoreFull)
    with pytest.raises(OSError, match="403"):
        limited.writer("k2")  # cannot even create its container

    wrong_key = SwiftStore(
        SwiftConfig(container="c", auth_url=env["ST_AUTH"], user=env["ST_USER"], key="x", retries=0)
    )
    with pytest.raises(OSError, match="401"):
        wrong_key.size("k")

    nowhere = SwiftStore(
        SwiftConfig(container="c", auth_url="http://127.0.0.1:9/auth/v1.0", user="u", key="k", retries=0)
    )
    with pytest.raises(OSError) as unreachable:
        nowhere.size("k")
    assert not isinstance(unreachable.value, requests.RequestException)


def test_config_is_validated() -> None:
    base = {"container": "c", "auth_url": "http://x/auth/v1.0", "user": "a:b", "key": "k"}
    assert SwiftConfig(**base).segments == "c_segments"
    assert SwiftConfig(**base).segment_size == 200 * MiB
    with pytest.raises(ValueError, match="segment_size"):
        SwiftConfig(**base, segment_size=6 * 1024 * MiB)
    with pytest.raises(ValueError, match="buffer_size"):
        SwiftConfig(**base, segment_size=MiB, buffer_size=2 * MiB)
    with pytest.raises(ValueError, match="project_name"):
        SwiftConfig(**base, auth_version="3")
    with pytest.raises(ValueError, match="container"):
        SwiftConfig(**{**base, "container": "a/b"})


def test_keystone_v3_credentials(make_swift_store: MakeStore, saio: Saio) -> None:
    """A stand-in Keystone hands out a real tempauth token and a catalog naming the real Swift, so
    the whole v3 path runs: password auth in a project, endpoint from the catalog, token use."""
    url, token = saio.admin().get_auth()
    container = make_swift_store().config.container
    with fake_keystone(token, url) as (auth_url, seen):
        config = SwiftConfig(
            container=container,
            auth_url=auth_url,
            user="glance",
            key="secret",
            auth_version="3",
            project_name="service",
            region_name="RegionTwo",
            segment_size=SEGMENT,
            buffer_size=64 * KiB,
        )
        store = SwiftStore(config)
        _put(store, "small", b"hello")
        large = os.urandom(2 * SEGMENT + 1)
        _put(store, "large", large)  # streamed segment PUTs with the session's token
        assert (_read(store, "small"), _read(store, "large")) == (b"hello", large)
    identity = seen[0]["auth"]["identity"]
    assert identity["password"]["user"] == {
        "name": "glance",
        "password": "secret",
        "domain": {"name": "Default"},
    }
    assert seen[0]["auth"]["scope"]["project"] == {"name": "service", "domain": {"name": "Default"}}
