"""The S3 store against a real S3 API (Swift's s3api): multipart uploads, cleanup, bounded memory,
errors. One test uses moto, for what this server cannot show (a region other than us-east-1)."""

from __future__ import annotations

import errno
import hashlib
import os
import tracemalloc
from collections.abc import Callable

import moto
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from spyglass.blobs import BlobNotFound, BlobStoreFull, s3
from spyglass.blobs.s3 import S3Config, S3Store
from tests.blobs.conftest import MiB, Saio, same_bucket

MakeStore = Callable[..., S3Store]
PART = 5 * MiB  # make_s3_store's default


def _put(store: S3Store, key: str, data: bytes, chunk: int = MiB) -> None:
    writer = store.writer(key)
    for offset in range(0, len(data), chunk):
        writer.write(memoryview(data)[offset : offset + chunk])
    writer.commit()


def _read(store: S3Store, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read(key, start, end))


def _parts_left(saio: Saio, store: S3Store) -> list[str]:
    conn = saio.admin()
    try:
        _, listing = conn.get_container(store.config.bucket + "+segments")
    except Exception:  # no multipart upload ever started
        return []
    return [entry["name"] for entry in listing]


def test_a_blob_larger_than_a_part_is_a_multipart_upload(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
    data = os.urandom(2 * PART + 777)
    _put(store, "big", data, chunk=300_000)
    etag = store.client.head_object(Bucket=store.config.bucket, Key="big")["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts
    assert store.size("big") == len(data)
    assert _read(store, "big") == data
    for start, end in [(PART - 1, PART + 1), (PART - 10, 2 * PART + 10), (2 * PART, None), (0, 1)]:
        assert _read(store, "big", start, end) == data[start:end], (start, end)
    assert _read(store, "big", len(data) + 1) == b""


def test_a_blob_of_at_most_one_part_is_one_put(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
    data = os.urandom(PART)
    _put(store, "one", data)
    etag = store.client.head_object(Bucket=store.config.bucket, Key="one")["ETag"]
    assert etag.strip('"') == hashlib.md5(data).hexdigest()
    assert _read(store, "one", PART - 3) == data[-3:]


def test_abort_aborts_the_multipart_upload(make_s3_store: MakeStore, saio: Saio) -> None:
    store = make_s3_store()
    writer = store.writer("doomed")
    writer.write(os.urandom(2 * PART + 1))  # two parts sent
    uploads = store.client.list_multipart_uploads(Bucket=store.config.bucket).get("Uploads", [])
    assert [u["Key"] for u in uploads] == ["doomed"]
    writer.abort()
    writer.abort()
    assert store.client.list_multipart_uploads(Bucket=store.config.bucket).get("Uploads", []) == []
    assert _parts_left(saio, store) == []
    with pytest.raises(BlobNotFound):
        store.size("doomed")


def test_delete_removes_the_parts(make_s3_store: MakeStore, saio: Saio) -> None:
    store = make_s3_store()
    _put(store, "big", os.urandom(PART + 1))
    assert len(_parts_left(saio, store)) == 2
    store.delete("big")
    store.delete("big")
    assert _parts_left(saio, store) == []
    assert list(store.iter_keys()) == []


def test_listing_pages_through_the_bucket(make_s3_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "LISTING_PAGE", 2)
    store = make_s3_store()
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        _put(store, key, b"")
    assert sorted(store.iter_keys()) == keys


def test_uploads_hold_at_most_two_parts_in_memory(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
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
    assert peak < 3 * PART, peak
    assert store.size("streamed") == 40 * MiB


def test_missing_blobs_and_buckets_are_blob_not_found(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
    for read in (lambda: store.read("nope"), lambda: store.read("nope", 2, 2), lambda: store.size("nope")):
        with pytest.raises(BlobNotFound):
            read()
    assert list(store.iter_keys()) == []  # no bucket yet
    store.delete("nope")


def test_an_exceeded_quota_is_blob_store_full(make_s3_store: MakeStore, saio: Saio) -> None:
    store = make_s3_store()
    _put(store, "first", b"x")
    conn = saio.admin()
    conn.post_container(store.config.bucket, {"X-Container-Meta-Quota-Bytes": "1000"})
    with pytest.raises(BlobStoreFull) as plain:
        _put(store, "plain", os.urandom(5000))
    assert plain.value.errno == errno.ENOSPC
    conn.put_container(store.config.bucket + "+segments", {"X-Container-Meta-Quota-Count": "0"})
    writer = store.writer("large")
    with pytest.raises(BlobStoreFull):
        writer.write(os.urandom(PART + 1))
        writer.commit()
    writer.abort()
    assert store.client.list_multipart_uploads(Bucket=store.config.bucket).get("Uploads", []) == []


def test_refusals_and_transport_errors_are_os_errors(make_s3_store: MakeStore, saio: Saio) -> None:
    store = make_s3_store()
    _put(store, "k", b"data")
    for other in (
        same_bucket(store, secret_key="wrong"),
        same_bucket(store, access_key=saio.env["ST_LIMITED_USER"], secret_key=saio.env["ST_LIMITED_KEY"]),
    ):
        with pytest.raises(OSError) as refused:
            _read(other, "k")
        assert not isinstance(refused.value, BlobStoreFull | ClientError)
        with pytest.raises(OSError):
            other.size("k")
    nowhere = same_bucket(store, endpoint_url="http://127.0.0.1:9", retries=0, timeout=2)
    with pytest.raises(OSError) as unreachable:
        nowhere.size("k")
    assert not isinstance(unreachable.value, BotoCoreError)


def test_config_is_validated() -> None:
    assert S3Config(bucket="images").part_size == 64 * MiB
    with pytest.raises(ValueError, match="part_size"):
        S3Config(bucket="images", part_size=MiB)
    with pytest.raises(ValueError, match="bucket"):
        S3Config(bucket="ab")


def test_a_bucket_outside_us_east_1_gets_a_location_constraint() -> None:
    with moto.mock_aws():
        store = S3Store(S3Config(bucket="images-eu", region="eu-west-3", access_key="a", secret_key="b"))
        _put(store, "k", b"data")
        assert store.client.get_bucket_location(Bucket="images-eu")["LocationConstraint"] == "eu-west-3"
        assert _read(store, "k") == b"data"
